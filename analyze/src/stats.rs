//! Counters of an analysis. Every cap that the traffic can hit has a
//! counter here, so nothing is dropped silently. Shards count separately
//! and their counters are summed, which keeps the totals independent of
//! the thread count.

use serde::Serialize;

macro_rules! counters {
    ($(#[$doc:meta])* pub struct $name:ident { $($(#[$fdoc:meta])* $field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        pub struct $name { $($(#[$fdoc])* pub $field: u64),* }
        impl $name {
            /// Adds another set of counters to this one.
            pub fn add(&mut self, o: &$name) { $(self.$field += o.$field;)* }
        }
    };
}

counters! {
    /// Counters of one analysis (see docs/architecture.md for each cap).
    pub struct Stats {
        /// Frames read from all inputs.
        frames,
        /// Bytes of frames as captured.
        captured_bytes,
        /// Packets the capturing tool dropped (missing from the inputs),
        /// as their pcapng interface statistics blocks say; a file that
        /// does not say (pcap never does) counts 0.
        capture_dropped,
        /// Frames that were IPv4 or IPv6.
        ip_packets,
        ipv4_packets,
        ipv6_packets,
        /// Frames of a link type trawl does not decode (skipped).
        unknown_link_frames,
        /// Frames that were not IP (ARP, LLDP, ...).
        non_ip_frames,
        /// Frames whose link or IP header was malformed or truncated.
        malformed_frames,
        /// Frames cut short by the snaplen.
        snaplen_truncated_frames,
        /// IP fragments seen / datagrams rebuilt from them.
        ip_fragments,
        ip_reassembled,
        /// Datagrams abandoned: too many in progress, too old, conflicting fragments.
        ip_frag_overflows,
        ip_frag_timeouts,
        ip_frag_errors,
        tcp_packets,
        udp_packets,
        icmp_packets,
        other_ip_packets,
        /// Rows written to each table.
        flows,
        tcp_flows,
        udp_flows,
        other_flows,
        api_calls,
        http_requests,
        http_responses,
        parse_issues,
        /// Parse issues not written because the per-run cap was reached.
        parse_issues_dropped,
        /// Flows closed early (end reason `evicted`) because their virtual shard's
        /// share of the flow-state budget (`--flow-memory`) was full; never-answered
        /// flows go first.
        flow_table_evictions,
        /// Of those, flows whose responder had sent packets (real conversations cut short).
        flow_table_evictions_answered,
        /// TCP packets flagged as retransmissions (plain, fast or spurious), as tshark flags them.
        tcp_retransmissions,
        /// Segments the TCP analysis did not remember because a cap was reached (docs/tcp-insights.md).
        tcp_unacked_dropped,
        /// TCP expert flags summed over connections, as tshark counts them (docs/tcp-insights.md).
        tcp_out_of_order,
        tcp_dup_acks,
        tcp_zero_windows,
        tcp_rst_packets,
        /// TCP connections refused: SYN answered by RST (completeness 33).
        tcp_refused,
        /// Times an out-of-order buffer hit its cap (a gap was declared).
        tcp_ooo_overflows,
        /// Times a shard's out-of-order bytes in all hit their cap.
        tcp_shard_ooo_overflows,
        /// Bytes missing from reassembled streams.
        tcp_gap_bytes,
        /// Bytes delivered by reassembly.
        tcp_stream_bytes,
        /// Stored HTTP bodies cut at the body cap or incomplete.
        http_bodies_truncated,
        /// Requests a connection's full queue of requests waiting for
        /// responses gave up (emitted as `no_response`), all protocols.
        requests_given_up,
        /// HTTP/2 frames read, and of them HEADERS and DATA frames.
        http2_frames,
        http2_headers_frames,
        http2_data_frames,
        /// HTTP/2 streams seen, and the requests and responses among them
        /// (`http_requests` and `http_responses` count HTTP/1 only).
        http2_streams,
        http2_requests,
        http2_responses,
        /// HTTP/2 header fields that referenced HPACK table entries never seen (connection joined mid-way, lost segments).
        hpack_unknown_fields,
        /// Times an HTTP/2 parser had to look for frames (joined mid-way, after a gap).
        http2_resyncs,
        /// gRPC calls, and the messages they carried (both directions).
        grpc_calls,
        grpc_messages,
        /// GraphQL operations.
        graphql_operations,
        /// WebSocket messages (data and control).
        websocket_messages,
        /// DNS (and mDNS, LLMNR) queries and responses, and of them those over TCP.
        dns_queries,
        dns_responses,
        dns_tcp_queries,
        dns_tcp_responses,
        /// TLS ClientHello and ServerHello messages.
        tls_client_hellos,
        tls_server_hellos,
        /// Redis commands and replies (pub/sub deliveries included).
        redis_commands,
        redis_replies,
        /// PostgreSQL messages from the client and from the server, as tshark counts them.
        pgsql_frontend_messages,
        pgsql_backend_messages,
        /// Database requests (PostgreSQL, MySQL, MongoDB rows with a request), and those answered with an error.
        db_requests,
        db_errors,
        /// Kafka requests and responses.
        kafka_requests,
        kafka_responses,
        /// AMQP methods (a row holds a method and, for a synchronous one, its reply).
        amqp_methods,
        /// Connections that switched away from HTTP/1 (101 or CONNECT).
        http_upgrades,
        /// Addresses in DNS responses (UDP port 53): they name peers (`dst.dns`).
        dns_answers,
        /// DNS answers not remembered because a cap was reached (docs/kubernetes.md).
        dns_answers_dropped,
    }
}
