//! Prompts (Kubeshark's eight investigation playbooks, written for
//! trawl's tools) and resources (the snapshot list, the schema and the
//! KFL reference).

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Resource, Role};
use serde_json::{Map, Value, json};

use crate::error::{ToolError, ToolResult};
use crate::state::Inner;

struct PromptDef {
    name: &'static str,
    description: &'static str,
    /// (name, description, required)
    args: &'static [(&'static str, &'static str, bool)],
    /// The task; `{arg}` is replaced by the argument's value.
    text: &'static str,
}

const SNAPSHOT_ARG: (&str, &str, bool) =
    ("snapshot_id", "Snapshot to investigate (default: all indexed snapshots)", false);

const PROMPTS: &[PromptDef] = &[
    PromptDef {
        name: "analyze_traffic",
        description: "Overview of a capture: who talks to whom, which protocols and endpoints, what fails",
        args: &[SNAPSHOT_ARG],
        text: "Give an overview of the traffic in snapshot {snapshot_id}. Use get_l7_data_boundaries for the time range, get_service_map for who calls whom, get_l4_flow_summary for the connections and top talkers, \
get_api_stats with group_by protocol and then endpoint for the calls, and list_api_calls for examples. Report volumes, the busiest endpoints, error rates and latency p50/p99, citing call ids.",
    },
    PromptDef {
        name: "find_errors",
        description: "Find failing calls (5xx, 4xx, unanswered, failed gRPC and GraphQL, database and broker errors) and what they have in common",
        args: &[SNAPSHOT_ARG, ("kfl", "Extra KFL filter to narrow the search", false)],
        text: "Find the failing API calls in snapshot {snapshot_id} (narrowed by KFL `{kfl}` if given). Start with get_incident_timeline: the failures in the order they came back, what caused each and the origin of each cascade; then get_api_stats group_by endpoint, status and dst_workload to see where errors concentrate, \
then list_api_calls with kfl `status_code >= 500`, `status_code >= 400` and `status_code == 0` (no answer); gRPC and GraphQL fail under HTTP 200, so also `grpc && grpc_status != 0` and `gql && gql_errors > 0`; databases and brokers fail in their own terms: `redis_error != \"\"`, `!postgresql_success`, `!mysql_success`, `!mongodb_success`, `kafka_error_code != 0` and `amqp_reply_code > 200`. Open a few with get_api_call_details. Say which endpoints, clients and times fail, and cite call ids and times.",
    },
    PromptDef {
        name: "trace_request",
        description: "Follow one API call: its request, response, timing and TCP connection",
        args: &[("call_id", "Call id from list_api_calls (snapshot/id)", true)],
        text: "Trace API call {call_id}. trace_api_call gives the downstream calls it set off (linked by trace header or timing; ambiguous ones listed apart). Use get_api_call_details (include_payload, include_l4) to show the request, the response, the latency and the TCP connection it used; \
then list_api_calls with kfl `flow_id == <its flow_id>` for the other calls on that connection. Export the connection with include_pcap if packets matter.",
    },
    PromptDef {
        name: "show_topology",
        description: "Service map: which clients call which servers, with volumes and errors",
        args: &[SNAPSHOT_ARG],
        text: "Draw the service topology of snapshot {snapshot_id}: get_service_map gives the edges with calls, error rates, p50/p99 and ports (focus for one service's blast radius); get_l4_flow_summary for connections, get_api_stats group_by src_workload and group_by dst_workload for calls \
(calls and flows carry the pod, namespace, service and workload of both ends at their time; list_workloads and list_ips show what the sidecars name and when). \
List the edges (client workload -> server workload, protocol, calls, error rate), cross-namespace calls (kfl `src.namespace != dst.namespace`) and calls leaving the cluster \
(kfl `dst.namespace == \"public\"`, with dst.dns), and point out unexpected ones.",
    },
    PromptDef {
        name: "latency_analysis",
        description: "Where time goes: slow endpoints, slow peers, network versus server time",
        args: &[SNAPSHOT_ARG, ("threshold_ms", "Latency that counts as slow (default 500)", false)],
        text: "Analyse latency in snapshot {snapshot_id}. get_incident_timeline shows when endpoints slowed beyond their own level and which callers gave up (timeouts); get_api_stats group_by endpoint gives p50/p90/p99 per endpoint; list_api_calls with kfl `elapsed_time > {threshold_ms}000` \
(microseconds) lists the slow calls. Compare with TCP handshake RTTs from list_l4_flows to separate network delay from server time. Cite call ids.",
    },
    PromptDef {
        name: "security_audit",
        description: "Look for cleartext credentials, unexpected peers, scans and odd methods",
        args: &[SNAPSHOT_ARG],
        text: "Audit snapshot {snapshot_id} for security problems. Start with security_audit: missing and forwarded credentials, card numbers and keys in URLs and bodies, cross-namespace plaintext, external egress and weak TLS, each with its calls and URLs. Then look for credentials in cleartext (list_api_calls kfl `\"authorization\" in request.headers`), unusual methods, \
refused or unanswered connections (run_sql: `SELECT zeek_state, count(*) FROM flows GROUP BY zeek_state`; REJ is refused, S0 unanswered), peers outside the known workloads (list_ips), and large transfers (get_l4_flow_summary). \
Report each finding with its evidence (call or flow ids, times) and export the relevant packets with export_snapshot_pcap.",
    },
    PromptDef {
        name: "compare_traffic",
        description: "Compare two snapshots (before and after a change)",
        args: &[("baseline", "Snapshot of the known-good traffic", true), ("candidate", "Snapshot to compare", true)],
        text: "Compare snapshot {candidate} with baseline {baseline}. Start with diff_snapshots baseline {baseline} candidate {candidate}: its verdict and findings per endpoint (new errors, latency, \
downstream calls per request, removed headers, JSON schema changes, new external destinations). Back each finding with get_api_stats group_by endpoint on both and list_api_calls examples; \
find_retries and find_redundant_calls on the candidate explain changed downstream counts. Report the verdict and every regression with figures from both.",
    },
    PromptDef {
        name: "debug_connection",
        description: "Debug connectivity to a peer: refused, reset, slow or silent connections",
        args: &[("ip", "IP address of the peer", true), SNAPSHOT_ARG],
        text: "Debug the connections of {ip} in snapshot {snapshot_id}. list_l4_flows with ip {ip} shows their states (conn_state, history), handshake RTTs, bytes each way and tcp_metrics \
(retransmissions, zero windows, RTT jitter: docs/tcp-insights.md for how to read them); \
list_api_calls with kfl `src.ip == \"{ip}\" || dst.ip == \"{ip}\"` shows the calls. Explain what went wrong (refused, reset, no answer, slow) and export the packets with export_snapshot_pcap.",
    },
];

pub fn list() -> Vec<Prompt> {
    PROMPTS
        .iter()
        .map(|p| {
            let args =
                p.args.iter().map(|(n, d, r)| PromptArgument::new(*n).with_description(*d).with_required(*r)).collect();
            Prompt::new(p.name, Some(p.description), Some(args))
        })
        .collect()
}

pub fn get(name: &str, args: &Map<String, Value>) -> ToolResult<GetPromptResult> {
    let p = PROMPTS.iter().find(|p| p.name == name).ok_or_else(|| {
        ToolError::new(format!("no prompt named `{name}`"))
            .with("known_prompts", json!(PROMPTS.iter().map(|p| p.name).collect::<Vec<_>>()))
    })?;
    let mut text = p.text.to_string();
    for (arg, _, required) in p.args {
        let value = args.get(*arg).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        let value = match value {
            Some(v) if !v.is_empty() => v,
            _ if *required => return Err(ToolError::new(format!("prompt {name}: argument `{arg}` is required"))),
            _ => match *arg {
                "snapshot_id" => "(all indexed snapshots)".to_string(),
                "threshold_ms" => "500".to_string(),
                _ => "(none)".to_string(),
            },
        };
        text = text.replace(&format!("{{{arg}}}"), &value);
    }
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(p.description))
}

pub fn resources() -> Vec<Resource> {
    vec![
        Resource::new("trawl://snapshots", "snapshots")
            .with_description("The workspace's snapshots: name, state, window, nodes, size")
            .with_mime_type("application/json"),
        Resource::new("trawl://schema", "schema")
            .with_description("Every table and column of a snapshot, with types and meaning")
            .with_mime_type("text/markdown"),
        Resource::new("trawl://kfl", "kfl")
            .with_description("The KFL filter language: syntax, variables, examples")
            .with_mime_type("text/markdown"),
    ]
}

pub fn read_resource(inner: &Inner, uri: &str) -> ToolResult<(String, &'static str)> {
    match uri {
        "trawl://snapshots" => {
            let list = trawl_snapshot::workspace::list(&inner.config.data.snapshots)?;
            Ok((json!({"snapshots": list}).to_string(), "application/json"))
        }
        "trawl://schema" => Ok((trawl_schemas::markdown(), "text/markdown")),
        "trawl://kfl" => Ok((trawl_query::kfl::markdown(), "text/markdown")),
        other => Err(ToolError::new(format!("no resource `{other}`"))
            .with("known_resources", json!(["trawl://snapshots", "trawl://schema", "trawl://kfl"]))),
    }
}
