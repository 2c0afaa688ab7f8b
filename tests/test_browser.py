"""Real-browser checks of notebooks 01 and 02: JupyterLab in headless Chromium, driven like a
student would.

Each test starts a private JupyterLab (temporary config, runtime, settings and workspace dirs, a
copy of the notebook in a temporary root, loopback only, random token), opens the notebook through
Playwright and runs all cells from the Run menu (``LABKIT_QUICK=1``). Notebook 01: it moves the
theta slider of ``labkit.widgets.theta_explorer`` with the keyboard and checks the readout against
Example 1's closed forms: W = |theta|, JS = log 2, KL = inf, TV = 1 for theta != 0, and all 0 at
theta = 0. Notebook 02: it moves the c slider of ``labkit.widgets.clip_explorer`` and checks that
the readout shows the numbers ``ClipExplorerModel.update`` returns for that c, and that the figure
is redrawn. Screenshots are left in ``test-artifacts/`` (ignored by git).

Chromium comes from Debian (``apt-get install chromium``), never from ``playwright install``:
without it the test is skipped, or fails when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from labserver import Lab, request

from labkit.widgets import THETA_RANGE

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_example1.ipynb"
NOTEBOOK_02 = REPO / "notebooks" / "02_js_vs_em.ipynb"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_ALL_TIMEOUT = 120  # s, every cell of the notebook (LABKIT_QUICK=1) on two busy cores
UPDATE_TIMEOUT = 30  # s, one slider move -> readout


# --------------------------------------------------------------------------- prerequisites


def _find_chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _missing(what: str, reason: str):
    """Skip locally; fail under CI, where a missing browser means a broken setup."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip). {what}")
    pytest.skip(f"{reason}. {what}")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        _missing(
            "Install it with `apt-get install chromium` (Debian); do not use `playwright install`.",
            "Chromium not found at /usr/bin/chromium or on PATH",
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Install the dev extras: `pip install -e .[dev]`.", "playwright is not installed")
    return path


@pytest.fixture
def lab(tmp_path, request):
    """A JupyterLab serving a copy of the notebook given as the (indirect) parameter."""
    notebook = request.param
    if not notebook.is_file():
        pytest.fail(f"{notebook} is missing")
    server = Lab(tmp_path, notebook)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy2(server.log_path, ARTIFACTS / f"browser_jupyter_{notebook.stem}.log")


# --------------------------------------------------------------------------- the browser test


def _wait_until(predicate, timeout: float, what: str, state=lambda: ""):
    """Poll ``predicate`` every 0.1 s; fail with ``what`` and the last ``state()`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; saw {state()}")
        time.sleep(0.1)


def _number(text: str) -> float:
    """Parse a slider readout; d3-format writes negatives with U+2212 MINUS SIGN."""
    return float(text.strip().replace("\u2212", "-"))


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4f}"


def _expected(theta: float) -> dict[str, str]:
    """Example 1's closed forms (paper, Sec. 2), written as the readout writes them."""
    if theta == 0:
        return {"W": "0.0000", "JS": "0.0000", "KL": "0.0000", "TV": "0.0000"}
    return {"W": _fmt(abs(theta)), "JS": _fmt(math.log(2)), "KL": "inf", "TV": "1.0000"}


KEYS = ("W", "JS", "KL", "TV", "W1_sample")


def _in_browser(chromium: str, lab: Lab, drive) -> None:
    """Open a headless Chromium page, ``drive(page, lab)``; screenshots and console on failure."""
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    stem = Path(lab.notebook).stem
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.set_default_timeout(30_000)
            try:
                drive(page, lab)
                page.screenshot(path=str(ARTIFACTS / f"browser_{stem}.png"))
            except BaseException:
                try:
                    page.screenshot(path=str(ARTIFACTS / f"browser_{stem}-failure.png"))
                except Exception:  # the original error matters more
                    pass
                (ARTIFACTS / f"browser_console_{stem}.log").write_text("\n".join(console))
                raise
        finally:
            browser.close()


@pytest.mark.parametrize("lab", [NOTEBOOK], indirect=True, ids=["01"])
def test_theta_explorer_in_jupyterlab(chromium, lab):
    _in_browser(chromium, lab, _drive)


@pytest.mark.parametrize("lab", [NOTEBOOK_02], indirect=True, ids=["02"])
def test_clip_explorer_in_jupyterlab(chromium, lab):
    _in_browser(chromium, lab, _drive_clip_explorer)


# --------------------------------------------------------------------------- a fresh clone


def _static_expectations(path: Path) -> tuple[int, int]:
    """(outputs JupyterLab shows as a picture when the notebook is untrusted, finished
    progress bars) in a committed notebook: a picture wins over text unless the output also
    has a safe type JupyterLab ranks higher (HTML, Markdown, LaTeX, SVG)."""
    import nbformat

    from labkit import publish

    nb = nbformat.read(path, as_version=4)
    tree = publish.state._state_of(nb)
    higher = {"text/html", "text/markdown", "text/latex", "image/svg+xml"}
    pictures = bars = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            pictures += "image/png" in data and not higher & set(data)
            view = data.get(publish.VIEW_MIME)
            bars += bool(view) and not tree.needs_picture(view["model_id"])
    return pictures, bars


def test_fresh_clone_shows_saved_widgets_and_saving_changes_nothing(chromium, tmp_path):
    """Every committed notebook, opened untrusted as in a fresh clone (``make lab``): no widget
    shows as ``VBox(children=...`` text or as a progress bar at 0%, each saved widget shows as
    its picture or its finished bar; then File > Save writes back the very same bytes."""
    from playwright.sync_api import sync_playwright

    notebooks = sorted(NOTEBOOK.parent.glob("*.ipynb"))
    lab = Lab(tmp_path)
    for path in notebooks:
        shutil.copy2(path, lab.root / path.name)
    views = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.widget-view+json"]'
    try:
        lab.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                for path in notebooks:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    _check_fresh_notebook(page, lab, path, views)
                    page.close()
            finally:
                browser.close()
    finally:
        lab.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy2(lab.log_path, ARTIFACTS / "browser_jupyter_fresh_clone.log")


def _check_fresh_notebook(page, lab: Lab, path: Path, views: str) -> None:
    pictures, bars = _static_expectations(path)
    page.goto(f"{lab.url}/lab/tree/{path.name}?reset&token={lab.token}",
              wait_until="domcontentloaded")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    outputs = panel.locator(".jp-OutputArea-output")
    shown_pictures = panel.locator('.jp-OutputArea-output[data-mime-type="image/png"] img')

    title = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    loaded = "i => i.complete && i.naturalWidth > 0"

    def rendered() -> bool:
        _accept_dialog(page)
        return (path.name in title.all_inner_texts() and shown_pictures.count() == pictures
                and all(img.evaluate(loaded) for img in shown_pictures.all()))

    _wait_until(rendered, 60, f"{path.name}: {pictures} pictures to show",
                lambda: f"tabs {title.all_inner_texts()}, {shown_pictures.count()} pictures, "
                        f"loaded {[img.evaluate(loaded) for img in shown_pictures.all()]}")
    texts = outputs.all_inner_texts()
    assert panel.locator(views).count() == 0, "an untrusted notebook rendered a live widget"
    as_text = [t[:80] for t in texts if "(children=" in t or re.search(r"(^|\s)0%\|", t)]
    assert not as_text, f"{path.name}: widget state shown as text: {as_text}"
    finished = [t for t in texts if re.search(r"100%\|█{10}\|", t)]
    assert len(finished) == bars, f"{path.name}: {len(finished)} finished bars of {bars}"
    page.screenshot(path=str(ARTIFACTS / f"browser_fresh_{path.stem}.png"))

    saved = lab.root / path.name
    before, modified = saved.read_bytes(), saved.stat().st_mtime_ns
    panel.locator(".jp-Cell").first.click()
    page.keyboard.press("Control+s")
    # jupyter_server rewrites the file in place (truncate, then write): done when it has changed
    # time and holds a whole notebook that stays the same for half a second.
    reads = []

    def written() -> bool:
        reads.append(saved.read_bytes())
        if saved.stat().st_mtime_ns == modified or not reads[-1].rstrip().endswith(b"}"):
            return False
        time.sleep(0.5)
        return saved.read_bytes() == reads[-1]

    _wait_until(written, 30, f"{path.name} to be saved", lambda: f"{len(reads[-1])} bytes")
    after = saved.read_bytes()
    if after != before:
        (ARTIFACTS / f"resaved_{path.name}").write_bytes(after)
    assert after == before, f"saving {path.name} changed it (see test-artifacts/resaved_*)"


def _accept_dialog(page) -> None:
    """Accept a JupyterLab dialog if one is open (e.g. "Select Kernel": take the preferred one)."""
    button = page.locator(".jp-Dialog .jp-mod-accept")
    if button.count():
        button.first.click()


def _menu(page, menu: str, item: str) -> None:
    """Click ``menu`` in the menu bar, then its entry ``item``."""
    page.locator(".lm-MenuBar-item").filter(has_text=re.compile(rf"^{menu}$")).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def _run_all(page, lab: Lab, explorer_table: str):
    """Open the notebook, clear its outputs, run all cells; wait until every cell ran, the kernel
    is idle and the output holding ``explorer_table`` (a CSS selector) shows a slider. A traceback
    fails at once. Returns (notebook, explorer output, execution indicator) locators."""
    page.goto(f"{lab.url}/lab/tree/{lab.notebook}?token={lab.token}", wait_until="domcontentloaded")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    notebook.locator(".jp-Cell").first.wait_for(state="visible", timeout=60_000)

    # Wait until the notebook's own kernel is up and idle, on both sides: the toolbar shows the
    # kernel's name (not "No Kernel") and an idle indicator, and the server reports it idle.
    # Running all cells before that opens JupyterLab's "Select Kernel" dialog instead.
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    indicator = panel.locator(".jp-Notebook-ExecutionIndicator")
    kernel_name = panel.locator(".jp-KernelName")

    def kernel_ready() -> bool:
        _accept_dialog(page)
        if indicator.get_attribute("data-status") != "idle":
            return False
        if kernel_name.inner_text().strip() in ("", "No Kernel"):
            return False
        try:
            kernels = json.loads(request(f"{lab.url}/api/kernels", lab.token)[1])
        except OSError:  # URLError, timeouts: the server is busy, ask again
            return False
        return len(kernels) == 1 and kernels[0]["execution_state"] == "idle"

    _wait_until(kernel_ready, 60, "the notebook's kernel to be idle", lambda: lab.log_tail(1500))

    # The notebook is committed with outputs (and saved widget state): clear them first, so
    # that everything checked below comes from this run. Then run all; both through the menus.
    code_prompts = notebook.locator(".jp-CodeCell .jp-InputArea-prompt")
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _wait_until(
        lambda: all(p.strip() in ("", "[ ]:") for p in code_prompts.all_inner_texts()),
        10,
        "outputs and execution counts to be cleared",
        lambda: code_prompts.all_inner_texts(),
    )
    _menu(page, "Run", "Run All Cells")

    explorer = notebook.locator(f".jp-OutputArea-output:has({explorer_table})").first
    handle = explorer.locator(".widget-slider .noUi-handle").first
    stderr = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    errors = notebook.locator(stderr)

    def state() -> str:
        errs = [e.inner_text()[-800:] for e in errors.all()]
        return f"prompts {code_prompts.all_inner_texts()}, error outputs {errs}"

    # Done when every code cell has an execution count ("[7]:", not "[ ]:" or "[*]:") and the
    # kernel is idle. Sliders are moved only then: the kernel handles widget messages after
    # the cells queued before them.
    def all_done() -> bool:
        _accept_dialog(page)
        for text in errors.all_inner_texts():
            if "Traceback" in text:
                raise AssertionError(f"a cell of {lab.notebook} raised:\n{text[-3000:]}")
        prompts = code_prompts.all_inner_texts()
        return (
            all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)
            and indicator.get_attribute("data-status") == "idle"
            and explorer.locator(explorer_table).count() > 0
            and handle.count() > 0
        )

    _wait_until(all_done, RUN_ALL_TIMEOUT, f"Run All to finish and show {explorer_table}", state)
    handle.scroll_into_view_if_needed()
    return notebook, explorer, indicator


def _drive(page, lab: Lab) -> None:
    # The explorer is the output that holds the readout table; its first slider is theta.
    notebook, explorer, indicator = _run_all(page, lab, "table.labkit-readout")
    readout = explorer.locator("table.labkit-readout").first
    theta_slider = explorer.locator(".widget-slider").first
    handle = theta_slider.locator(".noUi-handle").first
    theta_label = theta_slider.locator(".widget-readout").first

    def state() -> str:
        cells = {}
        if readout.count():
            for key in KEYS:
                cell = readout.locator(f'td[data-key="{key}"]')
                cells[key] = cell.inner_text() if cell.count() else None
        label = theta_label.inner_text() if theta_label.count() else None
        return f"theta label {label!r}, readout {cells}"

    def check(theta: float) -> None:
        want = _expected(theta)

        def ok() -> bool:
            try:
                if abs(_number(theta_label.inner_text()) - theta) > 1e-9:
                    return False
                got = {k: readout.locator(f'td[data-key="{k}"]').inner_text() for k in KEYS}
            except Exception:  # the widget is being re-rendered: look again
                return False
            if any(got[k] != v for k, v in want.items()):
                return False
            return abs(float(got["W1_sample"]) - abs(theta)) < 0.1

        _wait_until(ok, UPDATE_TIMEOUT, f"theta = {theta:.2f} and readout {want}", state)

    check(0.5)
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # one step each: 0.50 -> 0.53
    check(0.53)
    for _ in range(10):
        page.keyboard.press("PageDown")  # five steps each (noUiSlider's page multiplier): -> 0.03
    for _ in range(3):
        page.keyboard.press("ArrowLeft")  # -> 0.00
    check(0.0)
    for _ in range(2):
        page.keyboard.press("ArrowLeft")  # negative theta: W = |theta|
    check(-0.02)

    # Drag with the mouse: from theta = 1 to the whole pixel nearest the middle of the track
    # (where a student aims) must land on exactly 0, so every step needs a pixel or more.
    track = theta_slider.locator(".noUi-target").first.bounding_box()
    steps = round((THETA_RANGE[1] - THETA_RANGE[0]) / 0.01)
    assert track["width"] >= 2 * steps, f"theta track {track['width']} px for {steps} steps"
    y = track["y"] + track["height"] / 2

    def drag_to(x: float) -> None:
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(x, y, steps=12)
        page.mouse.up()

    drag_to(track["x"] + track["width"])  # far right: theta = 1
    check(1.0)
    drag_to(round(track["x"] + track["width"] / 2))
    check(0.0)

    # For the screenshot: let the figure catch up, then put the widget at the top of the view.
    _wait_until(
        lambda: indicator.get_attribute("data-status") == "idle", UPDATE_TIMEOUT, "kernel idle"
    )
    readout.locator("xpath=ancestor::div[contains(@class, 'jp-Cell')][1]").evaluate(
        "cell => cell.scrollIntoView({block: 'start'})"
    )


def _drive_clip_explorer(page, lab: Lab) -> None:
    """Move the c slider of the clipping explorer; the readout must show what
    ``ClipExplorerModel.update`` returns for the c on the slider, and the figure must change."""
    from labkit.widgets import CLIP_KEYS, ClipExplorerModel

    notebook, explorer, indicator = _run_all(page, lab, "table.labkit-clip-readout")
    readout = explorer.locator("table.labkit-clip-readout").first
    c_slider = explorer.locator(".widget-slider").first  # the first control is c
    handle = c_slider.locator(".noUi-handle").first
    c_label = c_slider.locator(".widget-readout").first
    status = explorer.locator(".labkit-status").first
    image = explorer.locator("img").first
    model = ClipExplorerModel()  # the notebook's default explorer: same pair, same seeds

    def shown() -> dict:
        return {k: readout.locator(f'td[data-key="{k}"]').inner_text() for k in CLIP_KEYS}

    def state() -> str:
        try:
            label, cells, text = c_label.inner_text(), shown(), status.inner_text()
        except Exception:  # noqa: BLE001 - a re-rendering widget: report what is there
            label, cells, text = None, None, None
        return f"c label {label!r}, readout {cells}, status {text!r}"

    def check(c: float) -> str:
        want = {k: f"{v:.4g}" for k, v in model.update(c, 5, 3, "clip").values.items()}

        def ok() -> bool:
            try:
                if abs(_number(c_label.inner_text()) - float(f"{c:.4g}")) > 1e-12:
                    return False
                return shown() == want and "training" not in status.inner_text()
            except Exception:  # the widget is being re-rendered: look again
                return False

        _wait_until(ok, UPDATE_TIMEOUT, f"c = {c:.4g} and readout {want}", state)
        return image.get_attribute("src")

    first = check(0.01)
    # The four controls' descriptions end at one x (n_critic used to sit further right, and the
    # constraint's label above its buttons).
    labels = explorer.locator(".widget-slider .widget-label, .widget-toggle-buttons .widget-label")
    boxes = [label.bounding_box() for label in labels.all()]
    assert len(boxes) == 4 and max(b["x"] + b["width"] for b in boxes) - min(
        b["x"] + b["width"] for b in boxes) < 1, f"control labels not aligned: {boxes}"
    assert len({round(b["y"]) for b in boxes}) == 4  # one row each, none above its control
    handle.focus()
    page.keyboard.press("ArrowRight")  # one step of 10^0.25: c = 10^-1.75
    second = check(10**-1.75)
    assert second != first, "the figure was not redrawn after c moved"
    for _ in range(2):
        page.keyboard.press("ArrowLeft")  # back through 0.01 (cached) to 10^-2.25
    third = check(10**-2.25)
    assert third not in (first, second)
    assert shown() != {k: f"{v:.4g}" for k, v in model.update(0.01, 5, 3, "clip").values.items()}

    # Gradient penalty has no c: its numbers show, and the c slider is disabled until clipping
    # is chosen again.
    explorer.locator(".widget-toggle-buttons button", has_text=re.compile("^gp$")).click()
    want = {k: f"{v:.4g}" for k, v in model.update(0.01, 5, 3, "gp").values.items()}
    disabled = c_slider.locator(".noUi-target[disabled]")
    _wait_until(lambda: shown() == want and disabled.count() == 1, UPDATE_TIMEOUT,
                f"GP's readout {want} and a disabled c slider", state)
    explorer.locator(".widget-toggle-buttons button", has_text=re.compile("^clip$")).click()
    _wait_until(lambda: disabled.count() == 0, UPDATE_TIMEOUT, "the c slider enabled", state)
    check(10**-2.25)  # back to the clipped critic of that c, from the cache
    _wait_until(lambda: "cached" in status.inner_text(), UPDATE_TIMEOUT, "'cached'", state)

    _wait_until(
        lambda: indicator.get_attribute("data-status") == "idle", UPDATE_TIMEOUT, "kernel idle"
    )
    readout.locator("xpath=ancestor::div[contains(@class, 'jp-Cell')][1]").evaluate(
        "cell => cell.scrollIntoView({block: 'start'})"
    )
