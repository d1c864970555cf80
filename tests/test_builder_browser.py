"""The visual builder in a real browser (Debian's Chromium through Playwright) against the
real app on a real server: a builder adds a step with the keyboard, configures it in the
side panel, saves the draft (it survives a reload), and a publish the API refuses shows
its error on the offending node; version history shows what changed between versions and
restores one into the draft; a test run started from the editor lights up its nodes as
real workers run the steps. Nothing is loaded from another host.

Screenshots go to build/screenshots/builder/.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console_support import WAIT_MS, Visit, build_ui, sign_in
from tests.engine_api_support import settle
from tests.engine_support import running_workers
from tests.live_server import serve
from tests.support import World, as_user

LOCAL = {"provider": "local", "model": "wordllama"}

# A support workflow using most kinds of block: a condition's two branches, a
# supervisor with its specialists, parallel branches, a loop body and an app action.
DEFINITION: dict[str, Any] = {"steps": [
    {"id": "intake", "type": "transform", "name": "Normalise the order",
     "output": {"amount": "{{ input.amount }}", "lines": "{{ input.lines }}"}, "next": "big"},
    {"id": "big", "type": "condition", "name": "Is it a big order?",
     "if": "input.amount > 100", "then": "ask", "else": "triage"},
    {"id": "ask", "type": "approval", "name": "Manager approval",
     "prompt": "Approve an order of {{ input.amount }}?", "assignee": {"role": "admin"},
     "next": "triage"},
    {"id": "triage", "type": "supervisor", "name": "Triage the order", "agent": "lead",
     "specialists": ["pricing", "fraud"], "task": "Check {{ input }}", "next": "fan"},
    {"id": "fan", "type": "parallel", "name": "Record and notify", "next": "done",
     "branches": [
         {"steps": [{"id": "notify", "type": "action", "name": "Tell the warehouse",
                     "action": "http.request",
                     "input": {"method": "POST", "url": "https://warehouse.example.com/orders"}}]},
         {"steps": [{"id": "each_line", "type": "loop", "name": "Price every line",
                     "for_each": "input.lines",
                     "body": {"steps": [{"id": "price", "type": "transform",
                                         "name": "Price the line",
                                         "output": {"sku": "{{ item.sku }}"}}]}}]},
     ]},
    {"id": "done", "type": "stop", "name": "Done", "status": "succeeded"},
]}


def _workflow(app: Any, world: World) -> str:
    builder = as_user(app, world, "a_builder", "a")
    for name in ("lead", "pricing", "fraud"):
        made = builder.post("/agents", json={"name": name, "config": {
            "role": name, "instructions": f"You are the {name} agent.", "model": LOCAL}})
        assert made.status_code == 201, made.get_json()
    made = builder.post("/workflows", json={"name": "Order review", "definition": DEFINITION})
    assert made.status_code == 201, made.get_json()
    workflow_id = made.get_json()["id"]
    published = builder.post(f"/workflows/{workflow_id}/publish")
    assert published.status_code == 201, published.get_json()  # the starting point is valid
    return workflow_id


def _open(browser: Browser, base: str, world: World, workflow_id: str,
          failed: list[str]) -> tuple[BrowserContext, Page, Visit]:
    """The builder of a workflow of workspace A, signed in as its builder, in a new
    window; watched by a `Visit` that also counts console errors among its problems, and
    every refused request kept in `failed`."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    visit = Visit(page, base, "builder")
    visit.shots.mkdir(parents=True, exist_ok=True)
    page.on("console", lambda m: visit.problems.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 400 else None)
    sign_in(page, base, world.users["a_builder"].email)
    page.goto(f"{base}/workflows/{workflow_id}/builder?tenant=ws-a")
    return context, page, visit


def _node(page: Page, step_id: str) -> Any:
    return page.locator(f'.react-flow__node[data-id="{step_id}"]')


def test_build_save_reload_and_publish_errors_on_their_node(app: Any, world: World,
                                                            browser: Browser) -> None:
    build_ui()
    workflow_id = _workflow(app, world)
    failed: list[str] = []
    with serve(app) as base:
        context, page, visit = _open(browser, base, world, workflow_id, failed)
        problems = visit.problems
        expect(_node(page, "price")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator(".ovb-pill", has_text="Live: v1")).to_be_visible()
        agents = _node(page, "triage").locator(".ovb-chip")
        expect(agents).to_have_text(["lead", "pricing", "fraud"])
        page.screenshot(path=str(visit.shots / "01-workflow.png"))
        assert visit.axe() == []

        # Keyboard only: select the first step, find "Condition" in the palette, add it
        # after that step.
        _node(page, "intake").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#ovb-inspector-title")).to_have_text("Normalise the order")
        page.locator("#ovb-palette-search").focus()
        page.keyboard.type("condition")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        added = _node(page, "condition_1")
        expect(added).to_be_visible()
        expect(page.locator("#ovb-inspector-title")).to_be_focused()

        # The side panel's form comes from the condition's JSON Schema.
        page.fill("#ovb-f-condition_1-if", "input.refund == true")
        page.locator("#ovb-f-condition_1-if").press("Tab")
        expect(added.locator(".ovb-node__summary")).to_have_text("if input.refund == true")
        page.select_option("#ovb-f-condition_1-then", "ask")  # connect, from the panel
        then = page.locator('.react-flow__edge[aria-label="condition_1 to ask (true)"]')
        expect(then).to_have_count(1)
        page.fill("#ovb-f-condition_1-name", "Refund due?")
        page.keyboard.press("Control+s")  # saves what is being typed too
        expect(page.get_by_role("status")).to_have_text("Draft saved.")
        expect(added.locator(".ovb-node__title")).to_have_text("Refund due?")
        page.screenshot(path=str(visit.shots / "02-step-added.png"))

        page.reload()  # the draft survived: the graph is the saved definition
        added = _node(page, "condition_1")
        expect(added.locator(".ovb-node__title")).to_have_text("Refund due?", timeout=WAIT_MS)

        # An expression the API refuses: the field says so as it is typed, and
        # publishing marks the condition's node.
        added.focus()
        page.keyboard.press("Enter")
        page.fill("#ovb-f-condition_1-if", "input.refund ==")
        expect(page.locator("#ovb-f-condition_1-if-error")).to_contain_text("cannot parse")
        page.get_by_role("button", name="Publish").click()
        error = added.locator(".ovb-node__error")
        expect(error).to_be_visible()
        expect(page.locator(".ovb-field.has-error #ovb-f-condition_1-if")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("Not published")
        page.screenshot(path=str(visit.shots / "03-publish-refused.png"))
        assert visit.axe() == []  # the side panel and its errors too

        # Delete with the keyboard, and undo it.
        added.focus()
        page.keyboard.press("Delete")
        expect(_node(page, "condition_1")).to_have_count(0)
        page.keyboard.press("Control+z")
        expect(_node(page, "condition_1")).to_be_visible()
        edge = page.locator('.react-flow__edge[aria-label="intake to condition_1"]')
        edge.focus()  # a connection too: select it, delete it, undo
        page.keyboard.press("Enter")
        page.keyboard.press("Delete")
        expect(edge).to_have_count(0)
        page.keyboard.press("Control+z")
        expect(edge).to_have_count(1)

        # Fixed, it publishes: the node's mark goes, the workflow is live at v2.
        added.focus()
        page.keyboard.press("Enter")
        page.fill("#ovb-f-condition_1-if", "input.refund == true")
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_role("status")).to_have_text("Published version 2.")
        expect(added.locator(".ovb-node__error")).to_have_count(0)
        expect(page.locator(".ovb-pill", has_text="Live: v2")).to_be_visible()
        violations = visit.csp_violations()
        context.close()

    saved = as_user(app, world, "a_builder", "a").get(f"/workflows/{workflow_id}").get_json()
    steps = {s["id"]: s for s in saved["definition"]["steps"]}
    assert steps["condition_1"] == {"id": "condition_1", "type": "condition",
                                    "name": "Refund due?", "if": "input.refund == true",
                                    "then": "ask", "next": "big"}
    # inserted after the selected step, taking over where it went
    assert steps["intake"]["next"] == "condition_1"
    assert saved["current_version"] == 2
    assert visit.foreign == []
    assert problems == []
    assert violations == []  # the Content-Security-Policy holds: no inline script or style
    assert failed == [f"422 POST {base}/api/v1/workflows/{workflow_id}/publish"]


def test_a_viewer_sees_the_graph_without_edit_controls(app: Any, world: World) -> None:
    builder = as_user(app, world, "a_builder", "a")
    workflow_id = builder.post("/workflows", json={"name": "Read me",
                                                   "definition": DEFINITION}).get_json()["id"]
    viewer = as_user(app, world, "a_viewer", "a")
    page = viewer.client.get(f"/workflows/{workflow_id}/builder?tenant=ws-a")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-can-edit="false"' in html and 'data-can-publish="false"' in html
    assert 'data-can-run="false"' in html  # no test run button: a viewer may not start runs
    other = as_user(app, world, "b_owner", "b").client.get(
        f"/workflows/{workflow_id}/builder?tenant=ws-b")
    assert other.status_code == 404  # another workspace's workflow is not there


MAILER = {"steps": [{"id": "mail", "type": "action", "name": "Tell the customer",
                     "action": "smtp.send_email"}]}


def test_an_action_step_picks_its_connection_by_name(app: Any, world: World,
                                                     browser: Browser) -> None:
    build_ui()
    builder = as_user(app, world, "a_builder", "a")
    workflow_id = builder.post("/workflows", json={"name": "Mailer",
                                                   "definition": MAILER}).get_json()["id"]
    other_app = builder.post("/connections", json={  # another app's: not offered
        "connector_key": "github", "name": "GitHub (acme)", "credentials": {"api_key": "ghp_x"}})
    assert other_app.status_code == 201, other_app.get_json()
    failed: list[str] = []
    with serve(app) as base:
        context, page, visit = _open(browser, base, world, workflow_id, failed)
        mail = _node(page, "mail")
        expect(mail).to_be_visible(timeout=WAIT_MS)
        mail.focus()
        page.keyboard.press("Enter")

        # No SMTP connection yet: said beside the field, with the way to make one.
        field = page.locator("#ovb-f-mail-connection")
        expect(field.locator("option")).to_have_text(["— choose a connection —"])
        empty = page.locator("#ovb-f-mail-connection-none")
        expect(empty).to_contain_text("No Email (SMTP) connection in this workspace yet.")
        create = empty.get_by_role("link", name="Create a connection")
        assert create.get_attribute("href") == "/connections/new?connector=smtp"
        page.screenshot(path=str(visit.shots / "07-connection-none.png"))
        assert visit.axe() == []

        # One is made (in another tab, as the link does): the list read again offers it.
        made = builder.post("/connections", json={
            "connector_key": "smtp", "name": "Support mail",
            "credentials": {"host": "smtp.example.com", "password": "s3cret"}})
        assert made.status_code == 201, made.get_json()
        made = made.get_json()
        empty.get_by_role("button", name="reload the list").click()
        expect(field.locator("option")).to_have_text(["— choose a connection —", "Support mail"])
        expect(empty).to_have_count(0)
        field.select_option(label="Support mail")
        page.keyboard.press("Control+s")
        expect(page.get_by_role("status")).to_have_text("Draft saved.")
        page.screenshot(path=str(visit.shots / "08-connection-picked.png"))
        assert visit.axe() == []
        context.close()

    saved = builder.get(f"/workflows/{workflow_id}").get_json()
    assert saved["definition"]["steps"][0]["connection"] == made["id"]
    assert visit.foreign == [] and visit.problems == [] and failed == []


GREETING = {"steps": [
    {"id": "greet", "type": "transform", "name": "Greet", "output": "Hello {{ input.name }}",
     "next": "shout"},
    {"id": "shout", "type": "transform", "name": "Shout", "output": "{{ input.name }}!"}]}


def test_history_diff_restore_and_a_test_run_lighting_up_the_nodes(app: Any, world: World,
                                                                   settings: Any,
                                                                   browser: Browser) -> None:
    builder = as_user(app, world, "a_builder", "a")
    workflow_id = builder.post("/workflows", json={"name": "Greeter",
                                                   "definition": GREETING}).get_json()["id"]
    assert builder.post(f"/workflows/{workflow_id}/publish").status_code == 201
    build_ui()
    failed: list[str] = []
    with running_workers(settings, processes=1, threads=2), serve(app) as base:
        context, page, visit = _open(browser, base, world, workflow_id, failed)
        problems = visit.problems
        greet = _node(page, "greet")
        expect(greet).to_be_visible(timeout=WAIT_MS)

        # A change, published as v2.
        greet.focus()
        page.keyboard.press("Enter")
        page.fill("#ovb-f-greet-name", "Greet warmly")
        page.locator("#ovb-f-greet-name").press("Tab")
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_role("status")).to_have_text("Published version 2.")

        # History: both versions, by whom; v1 against the draft names the changed step.
        page.get_by_role("button", name="History").click()
        expect(page.locator("#ovb-history-title")).to_be_focused()
        versions = page.locator(".ovb-versions__item")
        expect(versions).to_have_count(2)
        expect(versions.first).to_contain_text("v2")
        expect(versions.first).to_contain_text(world.users["a_builder"].name
                                               or world.users["a_builder"].email)
        expect(page.locator(".ovb-diff__same")).to_have_text("No differences.")  # v2 = draft
        versions.nth(1).focus()  # v1, with the keyboard
        page.keyboard.press("Enter")
        changed = page.locator(".ovb-diff__step.is-changed")
        expect(changed).to_have_count(1)
        expect(changed).to_contain_text("greet")
        field = changed.locator(".ovb-diff__field")
        expect(field.locator("dt")).to_have_text("name")
        expect(field.locator("del")).to_have_text('"Greet"')
        expect(field.locator("ins")).to_have_text('"Greet warmly"')
        expect(greet.locator(".ovb-node__mark")).to_have_text("Changed")  # on the canvas too
        page.screenshot(path=str(visit.shots / "04-history-diff.png"))
        assert visit.axe() == []
        page.get_by_role("button", name="Restore v1 to the draft").click()
        expect(page.get_by_role("status")).to_contain_text("Version 1 restored to the draft")
        expect(greet.locator(".ovb-node__title")).to_have_text("Greet")
        expect(page.locator(".ovb-pill", has_text="Live: v2")).to_be_visible()

        # A test run of the live version, with a sample input checked as JSON.
        page.get_by_role("button", name="Test run").click()
        dialog = page.get_by_role("dialog", name="Test run")
        expect(dialog).to_contain_text("not published")  # the draft is v1 again
        sample = page.locator("#ovb-run-input")
        expect(sample).to_be_focused()
        assert '"name"' in sample.input_value()  # prefilled from what the steps read
        sample.fill('{"name": ')
        page.get_by_role("button", name="Start test run").click()
        expect(page.locator("#ovb-run-input-error")).to_contain_text("Not valid JSON")
        assert visit.axe() == []  # the dialog and its error too
        page.screenshot(path=str(visit.shots / "05-test-run-input.png"))
        sample.fill('{"name": "Ada"}')
        page.get_by_role("button", name="Start test run").click()
        expect(dialog).to_be_hidden()
        for step_id in ("greet", "shout"):
            expect(_node(page, step_id).locator(".ovb-node__run")).to_have_text(
                "Succeeded", timeout=WAIT_MS)
        expect(page.locator(".ovb-run__badge")).to_have_text("Test run succeeded")
        href = page.get_by_role("link", name="Open in the run viewer").get_attribute("href")
        page.screenshot(path=str(visit.shots / "06-test-run-succeeded.png"))
        assert visit.axe() == []
        context.close()
        settle([world.tenants["a"].id])

    saved = builder.get(f"/workflows/{workflow_id}").get_json()
    assert saved["definition"] == GREETING  # v1 restored into the draft
    assert saved["current_version"] == 2
    runs = builder.get(f"/runs?workflow_id={workflow_id}").get_json()["items"]
    assert [(r["status"], r["version"], r["input"]) for r in runs] == [
        ("succeeded", 2, {"name": "Ada"})]
    assert href == f"/runs/{runs[0]['id']}"
    assert problems == []
    assert failed == []
