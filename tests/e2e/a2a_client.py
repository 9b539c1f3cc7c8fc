"""CROW's A2A agent through the a2a-sdk Python client (PyPI `a2a-sdk`), over JSON-RPC at /a2a of
a real `crow serve`: the 1.0 client from /.well-known/agent-card.json, and the 0.3 client the
SDK picks for the older /.well-known/agent.json card.

Run by tests/e2e/a2a.rs with one JSON argument: the server URL, an owner and a viewer key, the
expected skill ids and what was ingested. Prints one JSON line with what it saw; any failed
check raises.
"""

import asyncio
import json
import sys
from datetime import datetime, timedelta, timezone

import httpx
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import get_data_parts, get_text_parts, new_data_message, new_text_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Role,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
)

CFG = json.loads(sys.argv[1])
BASE = CFG["url"]
# A window that holds everything the test sent.
SINCE = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat().replace("+00:00", "Z")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def expect_error(kind, coro, *needles):
    """Awaits `coro`, which must raise `kind` with every needle in its message."""
    try:
        await coro
    except kind as e:
        text = str(e)
        for n in needles:
            check(n in text, f"{kind.__name__} without {n!r}: {text}")
        return text
    raise AssertionError(f"no {kind.__name__}")


async def send(client, skill, args, context_id=None):
    """SendMessage with one DataPart; returns the task."""
    message = new_data_message(
        {"skill": skill, "args": args}, media_type="application/json", role=Role.ROLE_USER, context_id=context_id
    )
    events = [e async for e in client.send_message(SendMessageRequest(message=message))]
    check(len(events) == 1 and events[0].HasField("task"), f"{skill}: one task expected, got {events}")
    return events[0].task


def data_of(task):
    check(len(task.artifacts) == 1, f"one artifact expected: {task}")
    parts = get_data_parts(task.artifacts[0].parts)
    check(len(parts) == 1 and isinstance(parts[0], dict), f"one DataPart expected: {task.artifacts[0]}")
    return parts[0]


async def run_v1(http, anon):
    card = await A2ACardResolver(anon, BASE).get_agent_card()
    check(card.name == "CROW", card.name)
    check([s.id for s in card.skills] == CFG["skills"], [s.id for s in card.skills])
    check(card.supported_interfaces[0].url == BASE + "/a2a", card.supported_interfaces)
    check(card.supported_interfaces[0].protocol_version == "1.0", card.supported_interfaces)
    check(card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer", card.security_schemes)
    check(not card.capabilities.streaming, card.capabilities)
    for skill in card.skills:
        example = json.loads(skill.examples[0])
        check(example["skill"] == skill.id and isinstance(example["args"], dict), skill)

    client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
    seen = {}

    # Skills with a DataPart, answered from what was ingested.
    traffic = await send(client, "traffic_summary", {"since": SINCE, "top": 5})
    check(traffic.status.state == TaskState.TASK_STATE_COMPLETED, traffic)
    t = data_of(traffic)
    check(t["page_views"] == CFG["page_views"] and t["events"] == CFG["events"], t)
    seen["traffic_summary"] = {"events": int(t["events"]), "page_views": int(t["page_views"])}

    funnel = await send(
        client, "funnel", {"steps": ["page:/pricing", "track:Signed Up"], "since": SINCE}, context_id=traffic.context_id
    )
    check(funnel.status.state == TaskState.TASK_STATE_COMPLETED, funnel)
    check(funnel.context_id == traffic.context_id, "the conversation continues")
    people = [int(s["people"]) for s in data_of(funnel)["steps"]]
    check(people == CFG["funnel"], people)
    seen["funnel"] = people

    products = await send(client, "find_products", {"limit": 10})
    names = [p["name"] for p in data_of(products)["data"]]
    check(CFG["product"] in names, names)
    seen["find_products"] = len(names)

    # A skill that fails is a failed task that says why.
    bad = await send(client, "funnel", {"steps": ["page:/"]})
    check(bad.status.state == TaskState.TASK_STATE_FAILED, bad)
    why = " ".join(get_text_parts(bad.status.message.parts))
    check("2 to 10 steps" in why, why)

    # GetTask reads the stored task back.
    got = await client.get_task(GetTaskRequest(id=traffic.id))
    check(got.id == traffic.id and got.status.state == TaskState.TASK_STATE_COMPLETED, got)
    check(data_of(got) == t, "the stored artifact is the one answered")
    short = await client.get_task(GetTaskRequest(id=traffic.id, history_length=0))
    check(len(short.history) == 0 and len(got.history) == 1, short)
    await expect_error(TaskNotFoundError, client.get_task(GetTaskRequest(id="no-such-task")), "no-such-task")

    # ListTasks: paged, filtered, with the total.
    page = await client.list_tasks(ListTasksRequest(page_size=2))
    check(page.total_size == 4 and len(page.tasks) == 2 and page.next_page_token, page)
    rest = await client.list_tasks(ListTasksRequest(page_size=2, page_token=page.next_page_token))
    ids = {x.id for x in page.tasks} | {x.id for x in rest.tasks}
    check(ids == {traffic.id, funnel.id, products.id, bad.id} and not rest.next_page_token, rest)
    failed = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_FAILED, include_artifacts=True))
    check([x.id for x in failed.tasks] == [bad.id], failed)
    in_context = await client.list_tasks(ListTasksRequest(context_id=traffic.context_id))
    check({x.id for x in in_context.tasks} == {traffic.id, funnel.id}, in_context)

    # A finished task cannot be canceled.
    await expect_error(TaskNotCancelableError, client.cancel_task(CancelTaskRequest(id=traffic.id)), "completed")

    # Free text is not understood yet: the error names the skills.
    text = new_text_message("How was traffic last week?", role=Role.ROLE_USER)
    await expect_error(
        ContentTypeNotSupportedError,
        client.send_message(SendMessageRequest(message=text)).__anext__(),
        "free text",
        "traffic_summary",
        "DataPart",
    )
    await expect_error(InvalidParamsError, send(client, "no_such_skill", {}), "no skill", "find_products")

    # An export works in the background: GetTask follows it to the file.
    export = await send(client, "create_export", {"resource": "interactions", "format": "json", "since": SINCE})
    check(export.status.state == TaskState.TASK_STATE_WORKING, export)
    for _ in range(300):
        export = await client.get_task(GetTaskRequest(id=export.id))
        if export.status.state != TaskState.TASK_STATE_WORKING:
            break
        await asyncio.sleep(0.1)
    check(export.status.state == TaskState.TASK_STATE_COMPLETED, export)
    record = data_of(export)
    check(record["status"] == "succeeded", record)
    file = await anon.get(BASE + record["download_url"])
    check(file.status_code == 200, file.text)
    lines = [line for line in file.text.splitlines() if line.strip()]
    check(len(lines) == CFG["events"], lines)
    seen["export_rows"] = len(lines)

    # Another export, canceled while it works (or refused if the worker was faster).
    second = await send(client, "create_export", {"resource": "sessions"})
    try:
        canceled = await client.cancel_task(CancelTaskRequest(id=second.id))
        check(canceled.status.state == TaskState.TASK_STATE_CANCELED, canceled)
    except TaskNotCancelableError:
        pass
    return seen


async def run_viewer_and_anonymous():
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {CFG['viewer_key']}"}, timeout=30) as http:
        async with httpx.AsyncClient(timeout=30) as anon:
            card = await A2ACardResolver(anon, BASE).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
        sessions = await send(client, "list_sessions", {"limit": 5})
        check(sessions.status.state == TaskState.TASK_STATE_COMPLETED, sessions)
        refused = await expect_error(
            A2AClientError, send(client, "create_export", {"resource": "sessions"}), "export permission", "viewer"
        )
    async with httpx.AsyncClient(timeout=30) as anon:
        client = ClientFactory(ClientConfig(httpx_client=anon, streaming=False)).create(card)
        await expect_error(A2AClientError, send(client, "traffic_summary", {}), "401")
    return refused


async def run_v03(http, anon):
    card = await A2ACardResolver(anon, BASE, agent_card_path="/.well-known/agent.json").get_agent_card()
    check(card.supported_interfaces[0].protocol_version == "0.3.0", card.supported_interfaces)
    check([s.id for s in card.skills] == CFG["skills"], card.skills)
    client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
    check(type(client._transport).__name__ == "CompatJsonRpcTransport", type(client._transport))
    task = await send(client, "traffic_summary", {"since": SINCE})
    check(task.status.state == TaskState.TASK_STATE_COMPLETED, task)
    check(data_of(task)["page_views"] == CFG["page_views"], task)
    got = await client.get_task(GetTaskRequest(id=task.id))
    check(got.id == task.id and data_of(got) == data_of(task), got)
    await expect_error(TaskNotCancelableError, client.cancel_task(CancelTaskRequest(id=task.id)))
    await expect_error(TaskNotFoundError, client.get_task(GetTaskRequest(id="missing")))
    return task.id


async def main():
    owner = {"Authorization": f"Bearer {CFG['owner_key']}"}
    async with httpx.AsyncClient(headers=owner, timeout=30) as http, httpx.AsyncClient(timeout=30) as anon:
        seen = await run_v1(http, anon)
    refused = await run_viewer_and_anonymous()
    async with httpx.AsyncClient(headers=owner, timeout=30) as http, httpx.AsyncClient(timeout=30) as anon:
        v03 = await run_v03(http, anon)
    print(json.dumps({"v1": seen, "viewer_refused": refused, "v03_task": v03}))


asyncio.run(main())
