// trawl's packet capture program: a TC classifier on clsact ingress and
// egress (or TCX) that copies each packet, up to the snap length, into a
// BPF ring buffer for user space to write as pcapng. It never changes a
// packet's fate (TC_ACT_OK / TCX_NEXT). Built by capture/build.rs with
// `clang -O2 -g -target bpf`.
//
// The program runs in the context of whoever sends or receives the
// packet, so every nanosecond here is taken from the traffic
// (benches/capture_program_cost.sh measures it). The packet is loaded
// straight into its ring buffer record: a reservation must have a size
// the verifier knows, so records come in size classes (the smallest
// that holds the packet, at most a third larger); the record says how
// many bytes are the packet's. Nothing else is touched per packet: the
// packets seen are counted by user space (records read plus drops), and
// only a drop (ring buffer full) updates a map.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MAX_SNAP 65535
#define WAKEUP_BYTES (256 * 1024)

struct header {
    __u64 ts_ns;     // bpf_ktime_get_ns(): monotonic; user space adds the offset to real time
    __u32 len;       // the packet's length on the wire
    __u32 caplen;    // bytes of the packet that follow
    __u32 ifindex;
    __u32 egress;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 26);
} records SEC(".maps");

// Per interface (by index), per CPU: packets dropped because the ring
// buffer was full. User space sums the CPUs.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

// Set by the loader before the program is loaded.
volatile const __u32 snaplen = MAX_SNAP;

static __always_inline void count_drop(__u32 ifindex) {
    __u64 *d = bpf_map_lookup_elem(&drops, &ifindex);
    if (d) {
        *d += 1;
        return;
    }
    __u64 one = 1;
    if (bpf_map_update_elem(&drops, &ifindex, &one, BPF_NOEXIST) != 0) {
        d = bpf_map_lookup_elem(&drops, &ifindex);
        if (d)
            *d += 1;
    }
}

// Copies a packet of n bytes (1 <= n <= SIZE) into a record of the class
// SIZE. Returns 0 when it went into the ring, -1 when the ring was full.
#define COPY_AS(SIZE)                                                                  \
    static __always_inline int copy_##SIZE(struct __sk_buff *skb, __u64 n, __u32 egress,      \
                                      __u64 flags) {                                     \
        struct rec_##SIZE {                                                              \
            struct header h;                                                             \
            __u8 data[SIZE];                                                             \
        } *r = bpf_ringbuf_reserve(&records, sizeof(struct rec_##SIZE), 0);              \
        if (!r)                                                                          \
            return -1;                                                                   \
        r->h.ts_ns = bpf_ktime_get_ns();                                                 \
        r->h.len = skb->len;                                                             \
        r->h.ifindex = skb->ifindex;                                                     \
        r->h.egress = egress;                                                            \
        r->h.caplen = 0;                                                                 \
        /* The verifier must see 1 <= n <= SIZE on the register passed. */               \
        asm volatile("" : "+r"(n));                                                      \
        if (n >= 1 && n <= SIZE && bpf_skb_load_bytes(skb, 0, r->data, n) == 0)          \
            r->h.caplen = n;                                                             \
        bpf_ringbuf_submit(r, flags);                                                    \
        return 0;                                                                        \
    }

COPY_AS(96)
COPY_AS(128)
COPY_AS(192)
COPY_AS(256)
COPY_AS(384)
COPY_AS(512)
COPY_AS(768)
COPY_AS(1024)
COPY_AS(1536)
COPY_AS(2048)
COPY_AS(3072)
COPY_AS(4096)
COPY_AS(6144)
COPY_AS(9216)
COPY_AS(16384)
COPY_AS(32768)
COPY_AS(65535)

static __always_inline int capture(struct __sk_buff *skb, __u32 egress) {
    __u64 n = skb->len;
    if (n > snaplen)
        n = snaplen;
    // Wake the reader once a batch is waiting: when this record takes what
    // waits past WAKEUP_BYTES. It also polls every 10 ms for what trickles
    // in. Waking it for every packet would cost a context switch each;
    // waking it for every packet while a batch waits (as when it falls
    // behind) would cost an interrupt each: 7 us per packet on a VM.
    __u64 avail = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA);
    __u64 flags = avail < WAKEUP_BYTES && avail + n + sizeof(struct header) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
    int full;
    if (n <= 96)
        full = copy_96(skb, n, egress, flags);
    else if (n <= 128)
        full = copy_128(skb, n, egress, flags);
    else if (n <= 192)
        full = copy_192(skb, n, egress, flags);
    else if (n <= 256)
        full = copy_256(skb, n, egress, flags);
    else if (n <= 384)
        full = copy_384(skb, n, egress, flags);
    else if (n <= 512)
        full = copy_512(skb, n, egress, flags);
    else if (n <= 768)
        full = copy_768(skb, n, egress, flags);
    else if (n <= 1024)
        full = copy_1024(skb, n, egress, flags);
    else if (n <= 1536)
        full = copy_1536(skb, n, egress, flags);
    else if (n <= 2048)
        full = copy_2048(skb, n, egress, flags);
    else if (n <= 3072)
        full = copy_3072(skb, n, egress, flags);
    else if (n <= 4096)
        full = copy_4096(skb, n, egress, flags);
    else if (n <= 6144)
        full = copy_6144(skb, n, egress, flags);
    else if (n <= 9216)
        full = copy_9216(skb, n, egress, flags);
    else if (n <= 16384)
        full = copy_16384(skb, n, egress, flags);
    else if (n <= 32768)
        full = copy_32768(skb, n, egress, flags);
    else
        full = copy_65535(skb, n, egress, flags);
    if (full)
        count_drop(skb->ifindex);
    return TC_ACT_OK;
}

SEC("classifier/ingress")
int trawl_ingress(struct __sk_buff *skb) { return capture(skb, 0); }

SEC("classifier/egress")
int trawl_egress(struct __sk_buff *skb) { return capture(skb, 1); }

char LICENSE[] SEC("license") = "GPL";
