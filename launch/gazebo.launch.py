"""Launch brainloop against a Gazebo (gz sim) robot through ROS 2.

Starts Gazebo with an empty world, spawns the robot from urdf/brainloop.urdf.xacro (its
<gazebo> block adds the diff-drive, IMU, camera and range sensors), bridges the gz topics to
ROS 2 with ros_gz_bridge, and runs the brain with its ROS 2 body: wheel commands go out as
/cmd_vel, body state comes back from /joint_states and /imu, camera frames from /camera/image.

    ros2 launch brainloop gazebo.launch.py instruction:="go to the red ball"
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import Command, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("brainloop")
    gz_share = get_package_share_directory("ros_gz_sim")
    xacro_file = os.path.join(share, "urdf", "brainloop.urdf.xacro")
    default_config = os.path.join(share, "config", "default.toml")

    config = LaunchConfiguration("config")
    world = LaunchConfiguration("world")
    instruction = LaunchConfiguration("instruction")

    robot_description = ParameterValue(Command(["xacro ", xacro_file]), value_type=str)

    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config),
        DeclareLaunchArgument("world", default_value="empty.sdf"),
        DeclareLaunchArgument("instruction", default_value=""),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(gz_share, "launch", "gz_sim.launch.py")),
            launch_arguments={"gz_args": ["-r ", world]}.items(),
        ),
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": robot_description, "use_sim_time": True}],
        ),
        Node(
            package="ros_gz_sim",
            executable="create",
            arguments=["-topic", "robot_description", "-name", "brainloop", "-z", "0.05"],
        ),
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            arguments=[
                "/cmd_vel@geometry_msgs/msg/Twist]gz.msgs.Twist",
                "/joint_states@sensor_msgs/msg/JointState[gz.msgs.Model",
                "/imu@sensor_msgs/msg/Imu[gz.msgs.IMU",
                "/camera/image@sensor_msgs/msg/Image[gz.msgs.Image",
                "/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock",
            ],
        ),
        Node(
            package="brainloop",
            executable="brainloop",
            name="brainloop",
            arguments=["ros2", "--config", config, "--body", "ros2",
                       "--instruction", instruction],
            parameters=[{"use_sim_time": True}],
            output="screen",
        ),
    ])
