"""CROW's MCP server through the official MCP Python client (PyPI `mcp`), over streamable HTTP
(`crow serve` at /mcp) and over stdio (`crow mcp`).

Run by tests/e2e/mcp.rs with one JSON argument: the server URL, an owner and a viewer key, the
`crow` binary, the data and models directories, the expected tool names, and what was ingested.
Prints one JSON line per run with what it saw; any failed check raises. With `"offline": true`
(no `crow serve` running) it only checks that `crow mcp` writes an export itself.
"""

import asyncio
import json
import sys
from datetime import datetime, timedelta, timezone

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

CFG = json.loads(sys.argv[1])
# A window that holds everything the test sent (insights take at most 1100 days, 1000 buckets).
SINCE = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat().replace("+00:00", "Z")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def http_client(key, mode="auto"):
    headers = {"Authorization": f"Bearer {key}"} if key else None
    transport = streamable_http_client(CFG["url"] + "/mcp", http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode)


def stdio_client(key, mode="auto"):
    params = StdioServerParameters(
        command=CFG["crow"],
        args=["--data", CFG["data"], "--models", CFG["models"], "mcp"],
        env={"CROW_API_KEY": key, "CROW_LOG": "warn"},
    )
    return Client(params, mode=mode)


def valid_args(name, export_id):
    """Valid arguments for every tool, chosen so each answer is about the ingested data."""
    return {
        "search": {"query": "parcel arrived late", "limit": 5},
        "sentiment_breakdown": {"interval": "day", "since": SINCE},
        "top_entities": {"since": SINCE, "limit": 10},
        "funnel": {"steps": ["page:/pricing", "track:Signed Up"], "since": SINCE},
        "traffic_summary": {"since": SINCE, "top": 5},
        "list_sessions": {"limit": 10},
        "list_interactions": {"type": "track", "limit": 10},
        "list_mentions": {"limit": 10},
        "find_products": {"name_prefix": "Trail"},
        "people_counts": {"limit": 10},
        "analyze_text": {"texts": ["The Trail Runner 42 is terrible, it fell apart after a week."]},
        "create_export": {"resource": "interactions", "format": "csv"},
        "get_export": {"id": export_id},
    }[name]


def data(result):
    return result.structured_content


async def call_every_tool(client, names):
    """Calls every tool with valid arguments; each answers structured JSON that fits the data."""
    seen = {}
    export_id = None
    # create_export first, so get_export has an id to ask about.
    order = sorted(names, key=lambda n: (n != "create_export", n == "get_export", n))
    for name in order:
        result = await client.call_tool(name, valid_args(name, export_id))
        text = " ".join(getattr(c, "text", "") for c in result.content)
        if name == "search" and not CFG["semantic"]:
            # Without the embedding model (`make models`) search says what is missing.
            check(result.is_error and "embedding model" in text, f"search without a model: {text}")
            continue
        check(not result.is_error, f"{name} answered an error: {text}")
        out = data(result)
        check(isinstance(out, (dict, list)), f"{name}: no structured content: {result}")
        # The text block carries the same JSON, for clients that only read text.
        check(json.loads(result.content[0].text) == out, f"{name}: text and structured content differ")
        seen[name] = out
        if name == "create_export":
            export_id = out["id"]
            check(out["status"] in ("queued", "running", "succeeded"), f"create_export: {out}")
    t = seen["traffic_summary"]
    check(t["events"] >= CFG["events"] and t["sessions"] >= 1 and t["page_views"] >= CFG["page_views"], f"traffic: {t}")
    s = seen["sentiment_breakdown"]
    counted = sum(p["count"] for p in s["data"])
    check(counted >= CFG["texts"], f"sentiment counted {counted} texts, {CFG['texts']} were sent: {s}")
    check(sum(p["negative"] for p in s["data"]) >= 1 and sum(p["positive"] for p in s["data"]) >= 1, f"sentiment: {s}")
    ents = json.dumps(seen["top_entities"])
    check(CFG["product"] in ents, f"top_entities does not name {CFG['product']}: {ents}")
    f = seen["funnel"]
    check(len(f["steps"]) == 2 and f["steps"][0]["people"] >= 2 and f["steps"][1]["people"] >= 1, f"funnel: {f}")
    check(f["steps"][1]["people"] <= f["steps"][0]["people"], f"funnel: {f}")
    check(len(seen["list_sessions"]["data"]) >= 1, f"sessions: {seen['list_sessions']}")
    inter = seen["list_interactions"]["data"]
    check(inter and all(i["type"] == "track" for i in inter), f"interactions: {inter}")
    check(isinstance(seen["list_mentions"]["data"], list), "mentions")
    prods = seen["find_products"]["data"]
    check([p["name"] for p in prods] == [CFG["product"]], f"find_products: {prods}")
    check(isinstance(seen["people_counts"]["data"], list), "people_counts")
    a = json.dumps(seen["analyze_text"])
    check("negative" in a, f"analyze_text: {a}")
    check(seen["get_export"]["id"] == export_id, f"get_export: {seen['get_export']}")
    if CFG["semantic"]:
        hits = seen["search"]["data"]
        check(hits, f"search found nothing: {seen['search']}")
        check("late" in json.dumps(hits[0]).lower(), f"the nearest text is not the late parcel: {hits}")
    return seen


async def exercise(client, transport):
    report = {"transport": transport, "protocol": client.protocol_version}
    check(client.server_info is not None and client.server_info.name == "crow", f"server info: {client.server_info}")
    tools = (await client.list_tools()).tools
    names = [t.name for t in tools]
    check(names == CFG["tools"], f"tools listed {names}, expected {CFG['tools']}")
    for t in tools:
        a = t.annotations
        check(a is not None, f"{t.name}: no annotations")
        for hint in ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"):
            check(isinstance(getattr(a, hint), bool), f"{t.name}: {hint} missing")
        check(t.input_schema.get("type") == "object", f"{t.name}: input schema {t.input_schema}")
        # The client checks every structured answer against it: a shape drift fails the call.
        check((t.output_schema or {}).get("type") == "object", f"{t.name}: output schema {t.output_schema}")
        check(t.description and t.title, f"{t.name}: no description or title")
    by_name = {t.name: t for t in tools}
    check(by_name["create_export"].annotations.read_only_hint is False, "create_export is not read-only")
    check(by_name["search"].annotations.read_only_hint is True, "search is read-only")
    check("enum" in json.dumps(by_name["create_export"].input_schema), "closed choices are enums")
    report["tools"] = names

    seen = await call_every_tool(client, names)
    report["called"] = sorted(set(seen) | {"search"})

    # Bad arguments: a tool error naming the field, not a protocol error.
    bad = await client.call_tool("sentiment_breakdown", {"interval": "fortnight"})
    check(bad.is_error, f"bad arguments answered {bad}")
    check("interval" in bad.content[0].text or "fortnight" in bad.content[0].text, bad.content[0].text)
    # An unknown tool is a protocol error.
    try:
        await client.call_tool("drop_tables", {})
        raise AssertionError("an unknown tool was answered")
    except MCPError as e:
        check(e.error.code == -32602, f"unknown tool: {e.error}")

    resources = {r.uri: r for r in (await client.list_resources()).resources}
    check(set(map(str, resources)) == {"crow://org/schema", "crow://insights/latest"}, f"resources {list(resources)}")
    schema = await client.read_resource("crow://org/schema")
    check(schema.contents[0].mime_type == "application/json", "schema mime type")
    s = json.loads(schema.contents[0].text)
    check(s["role"] == "owner" and s["counts"]["events"] >= CFG["events"], f"schema: {s['role']} {s['counts']}")
    check("interactions" in s["records"] and len(s["tools"]) == len(names), "schema records and tools")
    latest = await client.read_resource("crow://insights/latest")
    li = json.loads(latest.contents[0].text)
    check(li["traffic"]["events"] >= CFG["events"], f"latest insights: {li['traffic']}")
    check(sum(p["count"] for p in li["sentiment"]["data"]) >= CFG["texts"], f"latest sentiment: {li['sentiment']}")

    prompts = [p.name for p in (await client.list_prompts()).prompts]
    check({"weekly_report", "investigate_sentiment", "funnel_review"} <= set(prompts), f"prompts {prompts}")
    p = await client.get_prompt("investigate_sentiment", {"product": CFG["product"]})
    text = p.messages[0].content.text
    check(CFG["product"] in text and "`search`" in text, f"prompt: {text}")
    p = await client.get_prompt("funnel_review", {"steps": "page:/pricing, track:Signed Up"})
    check("`funnel`" in p.messages[0].content.text, "funnel prompt")
    try:
        await client.get_prompt("investigate_sentiment", {})
        raise AssertionError("a prompt without its required argument was answered")
    except MCPError as e:
        check("product" in e.error.message, f"missing argument: {e.error}")
    report["prompts"] = prompts
    return report


async def viewer(client, transport):
    names = [t.name for t in (await client.list_tools()).tools]
    check(names == CFG["viewer_tools"], f"{transport}: a viewer sees {names}")
    check("create_export" not in names, "a viewer is offered create_export")
    denied = await client.call_tool("create_export", {"resource": "interactions"})
    check(denied.is_error, f"{transport}: a viewer created an export: {denied}")
    check("export" in denied.content[0].text.lower(), f"{transport}: {denied.content[0].text}")
    ok = await client.call_tool("traffic_summary", {"since": SINCE})
    check(not ok.is_error and ok.structured_content["events"] >= CFG["events"], "a viewer reads traffic")
    s = json.loads((await client.read_resource("crow://org/schema")).contents[0].text)
    check(s["role"] == "viewer", f"viewer schema role {s['role']}")
    return {"transport": transport, "viewer_tools": names}


async def legacy(client, transport):
    """A client of the initialize-handshake era (protocol 2025-11-25 and before) is served too."""
    check(client.protocol_version in ("2025-11-25", "2025-06-18"), f"legacy protocol {client.protocol_version}")
    names = [t.name for t in (await client.list_tools()).tools]
    check(names == CFG["tools"], f"legacy tools {names}")
    r = await client.call_tool("traffic_summary", {"since": SINCE})
    check(not r.is_error and r.structured_content["events"] >= CFG["events"], f"legacy call: {r}")
    bad = await client.call_tool("funnel", {"steps": ["page:/"]})
    check(bad.is_error and "steps" in bad.content[0].text, f"legacy bad arguments: {bad}")
    li = json.loads((await client.read_resource("crow://insights/latest")).contents[0].text)
    check(li["traffic"]["events"] >= CFG["events"], "legacy resource")
    return {"transport": transport, "legacy": client.protocol_version}


async def unauthenticated():
    """Without a valid key /mcp answers 401 before MCP sees the request."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as h:
        r = await h.post(CFG["url"] + "/mcp", json=body, headers=headers)
        check(r.status_code == 401, f"no key: {r.status_code} {r.text}")
        check(r.headers.get("www-authenticate", "").startswith("Bearer"), f"no challenge: {r.headers}")
        r = await h.post(CFG["url"] + "/mcp", json=body, headers={**headers, "Authorization": "Bearer sk_nope"})
        check(r.status_code == 401, f"bad key: {r.status_code} {r.text}")
        check("detail" in r.json(), r.text)
    # The official client fails to connect with a bad key, too.
    try:
        async with http_client("sk_0000000000000000000000000000000000000000"):
            pass
        raise AssertionError("the client connected with a bad key")
    except AssertionError:
        raise
    except BaseException:  # noqa: BLE001 - the client raises an ExceptionGroup or an HTTP error
        pass
    return {"unauthenticated": 401}


async def offline_export():
    """With no `crow serve` running, `crow mcp` writes the export it was asked for itself."""
    async with stdio_client(CFG["owner_key"]) as c:
        made = (await c.call_tool("create_export", {"resource": "sessions", "format": "json"})).structured_content
        for _ in range(100):
            got = await c.call_tool("get_export", {"id": made["id"]})
            if got.structured_content["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        check(got.structured_content["status"] == "succeeded", f"offline export: {got.structured_content}")
        check(got.structured_content["rows"] >= 1, f"offline export rows: {got.structured_content}")
    print(json.dumps({"transport": "stdio", "offline_export": got.structured_content["status"]}))


async def main():
    if CFG.get("offline"):
        return await offline_export()
    out = []
    async with http_client(CFG["owner_key"]) as c:
        out.append(await exercise(c, "http"))
    async with http_client(CFG["viewer_key"]) as c:
        out.append(await viewer(c, "http"))
    async with http_client(CFG["owner_key"], mode="legacy") as c:
        out.append(await legacy(c, "http"))
    out.append(await unauthenticated())
    async with stdio_client(CFG["owner_key"]) as c:
        out.append(await exercise(c, "stdio"))
    async with stdio_client(CFG["viewer_key"]) as c:
        out.append(await viewer(c, "stdio"))
    async with stdio_client(CFG["owner_key"], mode="legacy") as c:
        out.append(await legacy(c, "stdio"))
    for line in out:
        print(json.dumps(line))


asyncio.run(main())
