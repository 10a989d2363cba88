"""DockerTrialRunner's per-trial work without an engine: the metric-file check runs once per
image while the image's containers hold no such file, and in every trial when they do."""

from executor.parts.bench.docker_trial import DockerTrialRunner
from executor.parts.bench.results import VariantInfo
from executor.core.resources import ExecResult, GpuRequest, SandboxLimits
from executor.core.task import MetricSpec, TaskSpec

METRIC = MetricSpec(kind="json_path", field="ms", output_file="out.json")


class FakeSandbox:
    """Answers the check's exec as a fresh container of an image with or without the file."""

    def __init__(self, holds_file: bool):
        self.holds_file, self.commands = holds_file, []

    def exec(self, command: str, timeout_s: float, **_kwargs) -> ExecResult:
        self.commands.append(command)
        return ExecResult(exit_code=0, stdout="present\n" if self.holds_file else "",
                          stderr="", duration_s=0.0)


def runner(tmp_path, **task_fields) -> DockerTrialRunner:
    task = TaskSpec(name="t", repo=".", bench_command="true", metric=METRIC, **task_fields)
    variants = {name: VariantInfo(name=name, image_tag=f"img:{name}", image_id=f"sha256:{name}",
                                  commit="c") for name in ("base", "agent")}
    return DockerTrialRunner(task, variants, run_id="r", item_id="i", log_dir=tmp_path,
                             timeout_s=60, limits=SandboxLimits(), gpus=GpuRequest(),
                             network="none")


def checks(trials: DockerTrialRunner, variant: str, holds_file: bool, times: int) -> list:
    found = []
    for _ in range(times):
        sandbox = FakeSandbox(holds_file)
        found.append((trials._clear_metric_file(sandbox, trials.variants[variant]),
                      len(sandbox.commands)))
    return found


def test_an_image_without_the_file_is_checked_once(tmp_path):
    trials = runner(tmp_path)
    assert checks(trials, "base", False, 3) == [(False, 1), (False, 0), (False, 0)]


def test_an_image_holding_the_file_has_it_deleted_in_every_trial(tmp_path):
    trials = runner(tmp_path)
    assert checks(trials, "agent", True, 3) == [(True, 1)] * 3
    assert checks(trials, "base", False, 1) == [(False, 1)]  # each image on its own


def test_with_a_server_every_trial_is_checked(tmp_path):
    # the server runs before the check and could write the file
    trials = runner(tmp_path, server_command="serve", server_ready_url="http://localhost:1/")
    assert checks(trials, "base", False, 2) == [(False, 1), (False, 1)]
