"""The GitHub Actions workflows: what runs where, and what can never reach the GPU runner.

tests.yml checks every push and pull request on a hosted runner with the README's own test
command; site.yml builds the measured site on the self-hosted GPU runner and deploys it to
Pages, and must never run for a pull request (a fork's code would run on the GPU machine).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml  # PyYAML: a dependency of transformers, so always in the tests venv

from modelnotes import provenance

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PR_EVENTS = {"pull_request", "pull_request_target"}


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    """The workflow's events as a dict. YAML 1.1 reads the bare key `on` as True."""
    on = workflow["on"] if "on" in workflow else workflow[True]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def readme_command(session: str) -> str:
    """The README's command for a nox session, as the README's first code block gives it."""
    for line in (ROOT / "README.md").read_text().splitlines():
        command = line.split("#")[0].strip()
        if command.endswith(f"nox -s {session}"):
            return command
    raise AssertionError(f"README has no command for nox -s {session}")


def runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def step_index(job: dict, predicate) -> int:
    matches = [i for i, step in enumerate(job["steps"]) if predicate(step)]
    assert matches, "no such step"
    return matches[0]


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def is_self_hosted(job: dict) -> bool:
    runs_on = job["runs-on"]
    labels = runs_on if isinstance(runs_on, list) else [runs_on]
    return "self-hosted" in labels


def is_hosted_ubuntu(job: dict) -> bool:
    return isinstance(job["runs-on"], str) and job["runs-on"].startswith("ubuntu-")


# --- tests.yml ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tests_job() -> dict:
    (job,) = load("tests.yml")["jobs"].values()
    return job


def test_tests_run_on_every_push_and_pull_request():
    events = triggers(load("tests.yml"))
    assert {"push", "pull_request"} <= set(events)
    for event in ("push", "pull_request"):  # no branch or path filter: every one of them
        assert not events[event], f"{event} is filtered: {events[event]}"


def test_tests_job_is_hosted_python_312_with_a_time_limit(tests_job):
    assert is_hosted_ubuntu(tests_job)
    assert tests_job["timeout-minutes"] == 30
    (setup,) = uses(tests_job, "actions/setup-python")
    # a string: unquoted, 3.10 would be read as the number 3.1
    assert setup["with"]["python-version"] == "3.12"


def test_tests_job_runs_the_readme_test_command(tests_job):
    assert readme_command("tests") in [r.strip() for r in runs(tests_job)]


def test_tests_job_builds_the_preview_and_checks_it_in_a_browser(tests_job):
    docs = step_index(tests_job, lambda s: "nox -s docs" in s.get("run", ""))
    check = step_index(tests_job, lambda s: "nox -s check_site" in s.get("run", ""))
    assert docs < check
    assert "--expect preview" in tests_job["steps"][check]["run"]
    assert any("chromium" in s.get("run", "") for s in tests_job["steps"][:check])
    # the hosted runner has no GPU: requiring one there would fail every build
    assert provenance.REQUIRE_GPU_VARIABLE not in str(load("tests.yml"))


# --- site.yml -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site() -> dict:
    return load("site.yml")


def test_site_runs_only_on_push_to_main_and_by_hand(site):
    events = triggers(site)
    assert set(events) == {"push", "workflow_dispatch"}
    assert events["push"]["branches"] == ["main"]


def test_site_build_runs_on_the_self_hosted_gpu_runner(site):
    build = site["jobs"]["build"]
    assert isinstance(build["runs-on"], list)
    assert {"self-hosted", "linux", "gpu"} <= set(build["runs-on"])
    assert re.fullmatch(r"github\.event_name\s*!=\s*'pull_request'", build["if"].strip())


def test_site_build_requires_the_gpu_and_names_the_commit(site, monkeypatch):
    env = site["jobs"]["build"]["env"]
    monkeypatch.setenv(provenance.REQUIRE_GPU_VARIABLE, str(env[provenance.REQUIRE_GPU_VARIABLE]))
    assert provenance.gpu_required()  # the value is one the guard honours
    assert env[provenance.REQUIRE_GPU_VARIABLE] == "1"
    assert env["MODELNOTES_COMMIT"] == "${{ github.sha }}"


def test_site_build_builds_checks_then_uploads(site):
    build = site["jobs"]["build"]
    docs = step_index(build, lambda s: s.get("run", "").strip() == readme_command("docs"))
    check = step_index(build, lambda s: "nox -s check_site" in s.get("run", ""))
    assert "--expect measured" in build["steps"][check]["run"]
    upload = step_index(build, lambda s: s.get("uses", "").startswith(
        "actions/upload-pages-artifact@"))
    assert docs < check < upload  # a site that fails the check is never uploaded
    assert build["steps"][upload]["with"]["path"] == "docs/_build/html"


def test_site_deploys_from_a_hosted_runner_with_pages_permissions(site):
    deploy = site["jobs"]["deploy"]
    assert deploy["needs"] in ("build", ["build"])
    assert is_hosted_ubuntu(deploy)
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    (step,) = uses(deploy, "actions/deploy-pages")
    url = deploy["environment"]["url"]
    assert url == f"${{{{ steps.{step['id']}.outputs.page_url }}}}"


def test_site_builds_never_overlap(site):
    concurrency = site["concurrency"]
    # one fixed group for every run: a group that varies (by ref, by run) lets two share the GPU
    assert isinstance(concurrency["group"], str) and "${{" not in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False  # never kill a deployment half-way


# --- every workflow ------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_no_pull_request_reaches_a_self_hosted_runner(path):
    workflow = yaml.safe_load(path.read_text())
    if PR_EVENTS & set(triggers(workflow)):
        for name, job in workflow["jobs"].items():
            assert not is_self_hosted(job), f"{path.name}: {name} runs pull requests self-hosted"


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_actions_are_pinned_to_a_major_version(path):
    for job in yaml.safe_load(path.read_text())["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"tests.yml", "site.yml"}
