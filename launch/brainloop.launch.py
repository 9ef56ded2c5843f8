"""Launch brainloop on a real ROS 2 robot.

Starts robot_state_publisher with the URDF expanded from urdf/brainloop.urdf.xacro and the
brainloop brain as a ROS 2 node (`brainloop ros2`, built with `--features ros2`), driving the
motor controller over the serial port.

    ros2 launch brainloop brainloop.launch.py port:=/dev/ttyACM0
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import Command, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("brainloop")
    xacro_file = os.path.join(share, "urdf", "brainloop.urdf.xacro")
    default_config = os.path.join(share, "config", "default.toml")

    config = LaunchConfiguration("config")
    port = LaunchConfiguration("port")
    instruction = LaunchConfiguration("instruction")
    use_sim_time = LaunchConfiguration("use_sim_time")

    robot_description = ParameterValue(Command(["xacro ", xacro_file]), value_type=str)

    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config,
                              description="brainloop configuration file"),
        DeclareLaunchArgument("port", default_value="/dev/ttyACM0",
                              description="serial port of the motor controller"),
        DeclareLaunchArgument("instruction", default_value="",
                              description="initial instruction (also on /brainloop/instruction)"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": robot_description,
                         "use_sim_time": use_sim_time}],
            output="screen",
        ),
        Node(
            package="brainloop",
            executable="brainloop",
            name="brainloop",
            arguments=["ros2", "--config", config, "--body", "serial", "--port", port,
                       "--instruction", instruction],
            output="screen",
        ),
    ])
