// trawl's packet capture program: a TC classifier on clsact ingress and
// egress (or TCX) that copies each packet, up to the snap length, into a
// BPF ring buffer for user space to write as pcapng. It never changes a
// packet's fate (TC_ACT_OK / TCX_NEXT). Built by capture/build.rs with
// `clang -O2 -g -target bpf`.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MAX_SNAP 65535
#define WAKEUP_BYTES (256 * 1024)

struct record {
    __u64 ts_ns;     // bpf_ktime_get_ns(): monotonic; user space adds the offset to real time
    __u32 len;       // the packet's length on the wire
    __u32 caplen;    // bytes copied
    __u32 ifindex;
    __u32 egress;
    __u8 data[MAX_SNAP + 1];
};

// One scratch record per CPU (too large for the BPF stack, and per-CPU
// array values are limited to 32 KiB).
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct record);
} scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 26);
} records SEC(".maps");

// Per interface (by index), per CPU: packets seen, and packets dropped
// because the ring buffer was full. User space sums the CPUs.
struct ifstat {
    __u64 seen;
    __u64 dropped;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct ifstat);
} ifstats SEC(".maps");

// Set by the loader before the program is loaded.
volatile const __u32 snaplen = MAX_SNAP;

static __always_inline struct ifstat *stats(__u32 ifindex) {
    struct ifstat *s = bpf_map_lookup_elem(&ifstats, &ifindex);
    if (s)
        return s;
    struct ifstat zero = {};
    bpf_map_update_elem(&ifstats, &ifindex, &zero, BPF_NOEXIST);
    return bpf_map_lookup_elem(&ifstats, &ifindex);
}

static __always_inline int capture(struct __sk_buff *skb, __u32 egress) {
    struct ifstat *st = stats(skb->ifindex);
    if (st)
        st->seen += 1;
    __u32 cpu = bpf_get_smp_processor_id() & 0xff;
    struct record *r = bpf_map_lookup_elem(&scratch, &cpu);
    if (!r)
        return TC_ACT_OK;
    __u64 n = skb->len;
    if (n > snaplen)
        n = snaplen;
    r->ts_ns = bpf_ktime_get_ns();
    r->len = skb->len;
    r->ifindex = skb->ifindex;
    r->egress = egress;
    r->caplen = 0;
    // The verifier must see 1 <= n <= MAX_SNAP on the register passed to
    // bpf_skb_load_bytes: bound it after a barrier, in one 64-bit variable.
    asm volatile("" : "+r"(n));
    if (n >= 1 && n <= MAX_SNAP && bpf_skb_load_bytes(skb, 0, r->data, n) == 0)
        r->caplen = n;
    __u64 size = (__u64)(sizeof(*r) - sizeof(r->data)) + (r->caplen & 0xffff);
    if (size > sizeof(*r))
        return TC_ACT_OK;
    // Wake the reader only once a batch is waiting (it also polls every
    // 10 ms): one wake-up per packet would cost a context switch each.
    __u64 flags = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
    if (bpf_ringbuf_output(&records, r, size, flags) != 0 && st)
        st->dropped += 1;
    return TC_ACT_OK;
}

SEC("classifier/ingress")
int trawl_ingress(struct __sk_buff *skb) { return capture(skb, 0); }

SEC("classifier/egress")
int trawl_egress(struct __sk_buff *skb) { return capture(skb, 1); }

char LICENSE[] SEC("license") = "GPL";
