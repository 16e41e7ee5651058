"""An agent's view of gRPC, GraphQL, WebSocket, PostgreSQL and AMQP
traffic over MCP, with
the official Python MCP client SDK over stdio: the scenario captures are
snapshotted and dissected through the tools, then listed, filtered,
opened and summed. Prints the findings as one JSON line.

    python3 l7_session.py --trawl BIN --data DIR
"""
import json

from stdio_session import check, ok, run


async def checks(s):
    found = {}
    b = await ok(s, "get_data_boundaries")
    for n in b["nodes"]:
        name = n["name"]
        await ok(s, "create_snapshot", {"name": name, "start": n["oldest_ts"], "end": n["newest_ts"] + 1, "nodes": [name]})
        d = await ok(s, "start_snapshot_dissection", {"snapshot_id": name, "wait_seconds": 120})
        check(d["status"] == "completed", d)

    # gRPC: the failing calls, found by their status (they are HTTP 200).
    failed = await ok(s, "list_api_calls", {"snapshot_id": "grpc", "kfl": "grpc && grpc_status != 0"})
    rows = [(c["grpc_method"], c["grpc_status"], c.get("grpc_message"), c["status"], c["proto"]) for c in failed["calls"]]
    check(rows == [("GetItem", 5, "no item missing", 200, "grpc"), ("ListItems", 13, "inventory database unavailable", 200, "grpc")], rows)
    stats = await ok(s, "get_api_stats", {"snapshot_id": "grpc", "group_by": "protocol"})
    grpc = [g for g in stats["groups"] if g["key"] == "grpc"][0]
    check(grpc["calls"] == 6 and grpc["errors"] == 2, grpc)
    detail = await ok(s, "get_api_call_details", {"id": failed["calls"][1]["id"]})
    call = detail["call"] if "call" in detail else detail
    text = json.dumps(call)
    check('\\"sku\\"' not in text and '{\\"1\\":\\"fail\\"}' in text, "without descriptors the request decodes by field number: " + text[:600])
    found["grpc_failed"] = rows

    # GraphQL: mutations, and the operations that came back with errors.
    muts = await ok(s, "list_api_calls", {"snapshot_id": "web", "kfl": 'gql && gql_operation == "mutation"'})
    check(len(muts["calls"]) == 3, muts)
    errs = await ok(s, "list_api_calls", {"snapshot_id": "web", "kfl": "gql && gql_errors > 0"})
    check(sorted(c["gql_operation"] for c in errs["calls"]) == ["mutation", "query"], errs)
    h2 = await ok(s, "list_api_calls", {"snapshot_id": "web", "kfl": 'gqlv2'})
    check([c["http_version"] for c in h2["calls"]] == ["HTTP/2", "HTTP/2"], h2)
    found["graphql_mutations"] = len(muts["calls"])

    # WebSocket: the close messages, each way.
    closes = await ok(s, "list_api_calls", {"snapshot_id": "ws", "kfl": 'ws && ws_opcode == "close"'})
    codes = sorted((c["ws_close_code"], c["ws_from_client"]) for c in closes["calls"])
    check(codes == [(1000, False), (1000, True), (4001, False), (4001, True)], codes)
    found["websocket_closes"] = codes

    # PostgreSQL: the failing statements, each with its SQLSTATE, and the
    # error count per protocol (a database error has no HTTP status).
    pg = await ok(s, "list_api_calls", {"snapshot_id": "pg", "kfl": "postgresql && !postgresql_success"})
    rows = sorted((c["db_error_code"], c.get("db_query", "")) for c in pg["calls"])
    check(rows == [
        ("22012", "SELECT 1 / (count(*) - 2) FROM users;"),
        ("23505", "INSERT INTO users VALUES (1, 'again');"),
        ("3D000", ""),
        ("42P01", "SELECT * FROM missing_table;"),
    ], rows)
    stats = await ok(s, "get_api_stats", {"snapshot_id": "pg", "group_by": "protocol"})
    check([(g["key"], g["calls"], g["errors"]) for g in stats["groups"]] == [("postgresql", 23, 4)], stats)
    rows = await ok(s, "run_sql", {"snapshot_id": "pg", "sql": "SELECT db_error_code, count(*) AS n FROM api_calls WHERE db_error_code IS NOT NULL GROUP BY 1 ORDER BY 1"})
    found["postgresql_errors"] = [r["db_error_code"] for r in rows["rows"]]
    check(found["postgresql_errors"] == ["22012", "23505", "3D000", "42P01"], rows)

    # AMQP: what the broker refused, by reply code.
    refused = await ok(s, "list_api_calls", {"snapshot_id": "amqp", "kfl": "amqp && amqp_reply_code > 200"})
    codes = sorted({(c["amqp_reply_code"], c["method"]) for c in refused["calls"]})
    check(codes == [(312, "basic.return"), (406, "channel.close"), (406, "exchange.declare"), (530, "connection.close"), (530, "connection.open")], codes)
    found["amqp_refused"] = codes

    # Every protocol's bodies and decoded columns through get_api_call_details:
    # each stored body comes back at its stored length, and each decoded
    # column equals the row list_api_calls shows in full.
    per_protocol, checked = {}, {}
    for n in b["nodes"]:
        snap = n["name"]
        sql = await ok(s, "run_sql", {"snapshot_id": snap, "limit": 1000, "max_result_bytes": 2000000,
                                      "sql": "SELECT id, protocol, length(encode(request_body, 'hex')) / 2 AS request, length(encode(response_body, 'hex')) / 2 AS response FROM calls"})
        offset = 0
        while True:
            page = await ok(s, "list_api_calls", {"snapshot_id": snap, "limit": 50, "offset": offset, "format": "full", "max_result_bytes": 2000000})
            for row in page["calls"]:
                d = await ok(s, "get_api_call_details", {"id": row["id"], "include_l4": False, "max_payload_size": 1048576, "max_result_bytes": 2000000})
                want = [r for r in sql["rows"] if f"{snap}/{r['id']}" == row["id"]][0]
                for side in ("request", "response"):
                    body = d[f"{side}_body"]
                    got = None if body is None else body["stored_bytes"]
                    check(got == want[side], f"{row['id']} ({want['protocol']}) {side} body: {want[side]} bytes stored, {got} came back")
                for col in ("request_decoded", "response_decoded", "grpc_method", "gql_operation", "ws_opcode", "dns_answers", "redis_line", "db_query", "kafka_api_key_name", "amqp_exchange"):
                    if row.get(col) is not None:
                        check(d["call"].get(col) == row[col], f"{row['id']}: {col} {d['call'].get(col)!r} != {row[col]!r}")
                checked[want["protocol"]] = checked.get(want["protocol"], 0) + 1
                if want["request"] or want["response"]:
                    per_protocol[want["protocol"]] = per_protocol.get(want["protocol"], 0) + 1
            if "next_offset" not in page:
                break
            offset = page["next_offset"]
    # The message protocols keep their content in columns of their own (no bodies).
    check(set(per_protocol) == {"http", "grpc", "graphql", "websocket"} and {"postgresql", "amqp", "redis"} <= set(checked), (per_protocol, checked))
    found["bodies_by_protocol"] = per_protocol

    # The incident stories (the broken shop against its fixed baseline).
    r = await ok(s, "find_retries", {"snapshot_id": "broken", "kfl": "http && dst.port == 8082"})
    chain = r["retry_chains"][0]
    waits = [round(w / 1000, 1) for w in chain["waits_ms"]]
    check((chain["attempts"], waits, chain["backoff"]) == (4, [1.0, 1.0, 1.0], "constant"), chain)
    red = await ok(s, "find_redundant_calls", {"snapshot_id": "broken"})
    check([(x["request"], x["count"]) for x in red["redundant"] if x["scope"] == "within_request"] == [("GET order:42", 12)] * 3, red)
    t = await ok(s, "get_incident_timeline", {"snapshot_id": "broken"})
    pay = [f for f in t["first_failures"] if f["endpoint"] == "POST /pay"]
    check(len(pay) == 1 and pay[0]["kind"] == "503" and pay[0]["caused_by"]["kind"] == "abandoned_by_caller", t)
    m = await ok(s, "get_service_map", {"snapshot_id": "broken", "focus": "127.0.0.3"})
    check(m["focus"]["blast_radius"] == ["127.0.0.10", "127.0.0.2"], m)
    d = await ok(s, "diff_snapshots", {"baseline": "baseline", "candidate": "broken"})
    kinds = sorted({f["kind"] for f in d["findings"] if f["regression"]})
    check(d["verdict"] == "fail" and kinds == ["downstream_call_vanished", "downstream_calls_changed", "header_removed", "json_type_changed", "latency_regression", "missing_endpoint", "new_error", "new_external_destination"], d)
    pays = await ok(s, "list_api_calls", {"snapshot_id": "broken", "kfl": 'http && dst.port == 8080 && path == "/pay"'})
    tr = await ok(s, "trace_api_call", {"id": pays["calls"][0]["id"]})
    steps = [(c["depth"], c["endpoint"], c["link"]) for c in tr["calls"]]
    check(steps == [(0, "POST /pay", "root"), (1, "POST /authorize", "trace header")] and tr["trace_id"].startswith("pay-"), tr)
    audit = await ok(s, "security_audit", {"snapshot_id": "broken"})
    kinds = sorted({f["kind"] for f in audit["findings"]})
    check(kinds == ["credential_forwarded", "external_egress", "missing_authorization", "sensitive_data", "weak_tls"] and audit["redacted"], audit)
    check("4111 1111 1111 1111" not in json.dumps(audit), "secrets are redacted by default")
    same = await ok(s, "diff_snapshots", {"baseline": "baseline", "candidate": "fixed"})
    check(same["verdict"] == "pass", same)
    found["diff_regressions"] = kinds
    return found


if __name__ == "__main__":
    run(checks)
