"""`autodistill dashboard` on a finished tiny study, loaded in a real headless Chromium.

The study page must show the objectives by name and a Pareto front with every trained
student; the trial list must mark the front's trials and show the attributes a trial
records. The screenshot of the study page is kept in `test-artifacts/dashboard/` at the
repository root (ignored by git). Skipped where Debian's `chromium` is not installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from matplotlib.image import imread
from optuna.trial import TrialState
from search_processes import ctrl_c_works

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium); "
                             "the dashboard cannot be loaded in a browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(finished_search):
    """`autodistill dashboard` serving a finished tiny search: (study, base URL, study id)."""
    out, config = finished_search
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    port = _free_port()
    exe = Path(sys.executable).parent / "autodistill"
    proc = subprocess.Popen([str(exe), "dashboard", str(config), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_works)
    base = f"http://127.0.0.1:{port}"
    try:
        summaries = None
        for _ in range(240):  # optuna-dashboard answers about 2 s after start; allow a busy machine
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=2) as r:
                    summaries = json.loads(r.read())["study_summaries"]
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the dashboard exited: {proc.stderr.read()}")
                time.sleep(0.5)
        assert summaries is not None, "the dashboard did not answer within 2 minutes"
        (summary,) = summaries
        yield study, base, summary["study_id"]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
    assert f"optuna-dashboard for study 'tiny' at {base}/" in proc.stdout.read()


def _load(url: str, tmp_path: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (8 s of virtual time), as Chromium saw it."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
               "--window-size=1400,1800", "--virtual-time-budget=8000", "--dump-dom"]
    if screenshot is not None:
        command.append(f"--screenshot={screenshot}")
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom)).replace("\u200b", " ")
    return re.sub(r"\s+", " ", text)


def test_the_study_page_shows_the_objective_names_and_the_pareto_front(dashboard, tmp_path):
    study, base, study_id = dashboard
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "study.png"
    screenshot.unlink(missing_ok=True)
    dom = _load(f"{base}/dashboard/studies/{study_id}", tmp_path, screenshot)
    print(f"dashboard screenshot: {screenshot}")
    text = _text(dom)
    assert "Pareto Front Objective X: accuracy Objective Y: latency" in text
    # the Pareto front plot (between its heading and the next card's) has a point per student
    section = dom[dom.index(">Pareto Front</h6>"):dom.index(">History</h6>")]
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert section.count('class="point"') == len(completed) > 0
    assert "Best Trial" in section  # the front's colour scale
    image = imread(screenshot)
    assert image.shape[0] >= 1000 and image.shape[1] >= 1000
    assert image[..., :3].std() > 0.05  # a page was drawn, not a blank window


def test_the_trial_list_marks_the_front_and_shows_what_a_trial_records(dashboard, tmp_path):
    study, base, study_id = dashboard
    best = min(study.best_trials, key=lambda t: t.number)
    text = _text(_load(f"{base}/dashboard/studies/{study_id}/trials?numbers={best.number}", tmp_path))
    marked = {int(n) for n in re.findall(r"Trial (\d+) Complete Best Trial", text)}
    assert marked == {t.number for t in study.best_trials}
    details = text[text.index(f"Trial {best.number} (trial_id="):]  # its details are open
    for key in ("architecture", "accuracy", "test_accuracy", "latency_p50_ms", "latency_p90_ms",
                "params", "size_mb", "train_seconds", "student_path"):
        assert f" {key} " in details, key
    assert best.user_attrs["student_path"] in details
