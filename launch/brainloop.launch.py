"""Launch brainloop on a real ROS 2 robot.

Starts robot_state_publisher with the URDF expanded from urdf/brainloop.urdf.xacro and the
brainloop brain as the ROS 2 node `brainloop` (`brainloop run --dds`, built with `--features
dds`: it speaks RTPS to rmw_cyclonedds / rmw_fastrtps nodes directly), driving the motor
controller over the serial port. It publishes /cmd_vel (TwistStamped), /odom, /tf (odom ->
base_footprint), /joint_states, /battery_state and /diagnostics, and takes
/brainloop/instruction, /brainloop/teleop/cmd_vel (TwistStamped), /brainloop/estop and
/brainloop/estop_reset. Its parameters (stamped, publish_tf, odom_frame, ...) come from the
params file launch_ros writes; `brainloop ros topics --ros-args ...` lists the result.

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
    stamped = LaunchConfiguration("stamped")

    robot_description = ParameterValue(Command(["xacro ", xacro_file]), value_type=str)

    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default_config,
                              description="brainloop configuration file"),
        DeclareLaunchArgument("port", default_value="/dev/ttyACM0",
                              description="serial port of the motor controller"),
        DeclareLaunchArgument("instruction", default_value="",
                              description="initial instruction (also on /brainloop/instruction)"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("stamped", default_value="true",
                              description="cmd_vel as TwistStamped (false: Twist, Humble-era bases)"),
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
            arguments=["run", "--dds", "--no-console", "--config", config, "--body", "serial",
                       "--port", port],
            # An empty instruction parameter means none (the robot waits for one).
            parameters=[{"instruction": ParameterValue(instruction, value_type=str),
                         "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
                         "stamped": ParameterValue(stamped, value_type=bool)}],
            output="screen",
        ),
    ])
