"""Launch brainloop against a Gazebo (Harmonic) robot through ROS 2 (Jazzy).

Exports the scenario's arena as a Gazebo world (`brainloop scenario export`: the same walls,
obstacles and coloured objects as the MuJoCo simulation for that seed), starts gz sim with it,
publishes the URDF (urdf/brainloop.urdf.xacro: its <gazebo> blocks add the diff drive, joint
states, IMU, camera and gpu_lidar), spawns the robot at the scenario's start pose, bridges the
gz topics to ROS 2 with ros_gz_bridge (config/ros_gz_bridge.yaml) and runs the brain with its
ROS 2 body over DDS, on simulated time.

    ros2 launch brainloop gazebo.launch.py scenario:=03-green-cylinder-obstacles seed:=7

`scenario` is a name in the package's scenarios/ or a path to a .toml; `seed` defaults to the
scenario's, `instruction` to the scenario's instruction.
"""
import json
import os
import subprocess
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import Command, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import ExecutableInPackage

DEFAULT_SCENARIO = "01-red-ball"


def export_world(context, share):
    """Write the scenario's world file; return `brainloop scenario export --json`'s answer."""
    scenario = LaunchConfiguration("scenario").perform(context)
    seed = LaunchConfiguration("seed").perform(context).strip()
    if scenario.endswith(".toml") or os.sep in scenario:
        path = scenario
    else:
        path = os.path.join(share, "scenarios", scenario + ".toml")
    stem = os.path.splitext(os.path.basename(path))[0]
    out = os.path.join(tempfile.gettempdir(), f"brainloop-{stem}-seed{seed or 'default'}.sdf")
    exe = ExecutableInPackage(executable="brainloop", package="brainloop").perform(context)
    cmd = [exe, "scenario", "export", path, "--sdf", out, "--json"]
    if seed:
        cmd += ["--seed", seed]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def launch_setup(context):
    share = get_package_share_directory("brainloop")
    gz_share = get_package_share_directory("ros_gz_sim")
    xacro_file = os.path.join(share, "urdf", "brainloop.urdf.xacro")
    bridge_config = os.path.join(share, "config", "ros_gz_bridge.yaml")
    config = LaunchConfiguration("config")

    world = export_world(context, share)
    x, y, yaw = world["start"]
    instruction = LaunchConfiguration("instruction").perform(context) or world["instruction"]
    robot_description = ParameterValue(Command(["xacro ", xacro_file]), value_type=str)

    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(gz_share, "launch", "gz_sim.launch.py")),
            launch_arguments={"gz_args": f"-r {world['sdf']}",
                              "on_exit_shutdown": "true"}.items(),
        ),
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": robot_description, "use_sim_time": True}],
            output="screen",
        ),
        Node(
            package="ros_gz_sim",
            executable="create",
            arguments=["-world", world["world"], "-topic", "robot_description",
                       "-name", "brainloop", "-x", str(x), "-y", str(y), "-z", "0.01",
                       "-Y", str(yaw)],
            output="screen",
        ),
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            parameters=[{"config_file": bridge_config, "use_sim_time": True}],
            output="screen",
        ),
        Node(
            package="brainloop",
            executable="brainloop",
            name="brainloop",
            arguments=["run", "--dds", "--no-console", "--body", "ros2", "--config", config,
                       "--instruction", instruction],
            parameters=[{"use_sim_time": True}],
            output="screen",
        ),
    ]


def generate_launch_description():
    share = get_package_share_directory("brainloop")
    default_config = os.path.join(share, "config", "default.toml")
    return LaunchDescription([
        DeclareLaunchArgument("scenario", default_value=DEFAULT_SCENARIO,
                              description="scenario name in scenarios/ or a path to a .toml"),
        DeclareLaunchArgument("seed", default_value="",
                              description="layout seed (default: the scenario's)"),
        DeclareLaunchArgument("config", default_value=default_config,
                              description="brainloop configuration file"),
        DeclareLaunchArgument("instruction", default_value="",
                              description="initial instruction (default: the scenario's)"),
        OpaqueFunction(function=launch_setup),
    ])
