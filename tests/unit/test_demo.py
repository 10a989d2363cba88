from executor.parts import demo


def test_generation_reproduces_the_published_shas(tmp_path):
    shas = demo.generate_demo_repo(tmp_path / "repo")
    assert shas == {"root": demo.DEMO_ROOT_SHA, "base": demo.DEMO_BASE_SHA,
                    "human": demo.DEMO_HUMAN_SHA, "latest": demo.DEMO_LATEST_SHA}


def test_demo_task_comes_from_the_repo_task_file(tmp_path):
    task = demo.demo_task(tmp_path)
    assert task.name == "demo"
    assert task.repo == str(tmp_path)
    assert "--output-json /tmp/isobench_bench.json" in task.bench_command
    assert task.metric.output_file == "/tmp/isobench_bench.json"
    assert task.test_command


def test_reference_patch_is_not_the_human_change():
    patch = demo.reference_agent_patch().decode()
    assert "heapq" in patch  # a different fix from the human's free-block stack
    assert "_free_stack" not in patch
