/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between ssi_rdma's connection engine (conn.c) and its Rust side
 * (main.rs). Every function may sleep unless noted; none may be called from the
 * upcalls with a lock held that the upcall path takes.
 */
#ifndef SSI_RDMA_CONN_H
#define SSI_RDMA_CONN_H

#include <linux/types.h>

struct page;

/* Largest frame: the wire header (24) plus the largest payload (4160). */
#define SSI_RDMA_FRAME_MAX 4184

/*
 * Reasons carried in a connection reject (RejectReason in rust/src/rdma_conn.rs, which
 * has their texts; also in tests/tools/ssi-hostile.c).
 */
enum ssi_reject_reason {
	SSI_REJ_NONE = 0,
	SSI_REJ_BAD_PRIVATE_DATA = 1,
	SSI_REJ_UNKNOWN_NODE = 2,
	SSI_REJ_ADDRESS = 3,
	SSI_REJ_ABI = 4,
	SSI_REJ_NO_RESOURCES = 5,
	SSI_REJ_ROLE = 6,
};

/* Counters since load (mirrored by RdmaStats in main.rs). */
struct ssi_rdma_stats {
	u64 rx_frames;
	u64 tx_frames;
	u64 rx_errors;
	u64 rejected;
	u64 connect_attempts;
	u64 reads;
	u64 exposed;
	u64 links_up;
};

/* This node, for the policy (Local in rust/src/rdma_conn.rs): fixed once started. */
struct ssi_local {
	u32 node;
	u32 abi;
	u32 incarnation; /* never 0 */
};

/* Copies *local. */
int ssi_rdma_conn_start(const struct ssi_local *local, u16 port);
int ssi_rdma_conn_listen(void);
void ssi_rdma_conn_stop(void);
/* Non-blocking: record/forget a peer, reset its link. */
int ssi_rdma_conn_connect(u32 node, __be32 ip, u16 port);
void ssi_rdma_conn_disconnect(u32 node, bool forget);
/* Non-blocking (allocates with GFP_KERNEL). */
int ssi_rdma_conn_send(u32 node, const u8 *frame, size_t len);
int ssi_rdma_conn_read(u32 node, u64 addr, u32 rkey, struct page *page, u32 len,
		       u32 timeout_ms);
int ssi_rdma_conn_expose(u32 node, struct page *page, u64 *addr, u32 *rkey, u64 *cookie);
void ssi_rdma_conn_unexpose(u32 node, u64 cookie);
void ssi_rdma_conn_stats(struct ssi_rdma_stats *out);

/* Upcalls, implemented in main.rs. Called with no lock of conn.c held. */
void ssi_rdma_upcall_link(u32 node, bool up);
void ssi_rdma_upcall_deliver(u32 node, const u8 *frame, u32 len);

/*
 * Policy: the decisions of the connection engine, implemented in
 * rust/src/rdma_conn.rs (wrapped by policy.rs). The state they read and change lives
 * in conn.c's structures, under conn.c's locks, and changes only through them; each
 * structure has the layout of the Rust type named in its comment (both sides assert
 * the sizes). They never sleep nor allocate, so conn.c calls them under spinlocks.
 */

/* One connection's life (Conn): under conn->lock. */
struct ssi_conn_fsm {
	u8 state;
	bool teardown_queued;
	bool announced;
};

/* What the engine keeps about a peer (Peer): under ssi_peers_lock. */
struct ssi_peer_fsm {
	bool wanted;
	u32 failures;
};

/* What conn.c knows about a peer besides its ssi_peer_fsm (PeerFacts). */
struct ssi_peer_facts {
	u32 node;
	bool stopping;
	bool has_conn; /* a connection is installed for it */
};

/* Action in rust/src/rdma_conn.rs; the numbers are repeated in policy.rs. */
enum ssi_action_kind {
	SSI_ACT_NOTHING = 0,
	SSI_ACT_CONNECT = 1, /* start a connection attempt after delay_ms */
	SSI_ACT_ANNOUNCE_UP = 2,
	SSI_ACT_ANNOUNCE_DOWN = 3,
	SSI_ACT_REPLACED_CLOSED = 4, /* log it; the newer connection keeps the link */
	SSI_ACT_QUEUE_TEARDOWN = 5,
};

/* What to do (CAction in policy.rs). */
struct ssi_action {
	u32 kind; /* enum ssi_action_kind */
	u32 delay_ms;
};

/* Bytes of CM private data (CmPriv), both ways. */
#define SSI_CM_PRIV_LEN 16

u32 ssi_rdma_max_nodes(void);
void ssi_rdma_cm_priv(const struct ssi_local *local, u8 reason, u8 *out);
/* Return SSI_REJ_NONE, or the reject reason with the log line in msg. */
u8 ssi_rdma_check_request(const struct ssi_local *local, const void *data, u32 len,
			  const char *from, u32 *node, char *msg, size_t msg_len);
u8 ssi_rdma_check_peer(const struct ssi_peer_fsm *peer, struct ssi_peer_facts facts,
		       bool src_ipv4, __be32 src_ip, __be32 configured_ip, const char *from,
		       char *msg, size_t msg_len);
/* True if data is ssi's reject private data: the log line is then in msg. */
bool ssi_rdma_rejection(const struct ssi_local *local, u32 peer, const void *data, u32 len,
			char *msg, size_t msg_len);

struct ssi_conn_fsm ssi_rdma_conn_new(void);
bool ssi_rdma_conn_may_send(const struct ssi_conn_fsm *conn);
bool ssi_rdma_conn_closing(const struct ssi_conn_fsm *conn);
bool ssi_rdma_conn_announced(const struct ssi_conn_fsm *conn);
struct ssi_action ssi_rdma_conn_established(struct ssi_conn_fsm *conn);
struct ssi_action ssi_rdma_conn_fail(struct ssi_conn_fsm *conn);
void ssi_rdma_conn_close(struct ssi_conn_fsm *conn);
struct ssi_action ssi_rdma_conn_closed(const struct ssi_conn_fsm *conn, bool reported_up);

struct ssi_peer_fsm ssi_rdma_peer_new(void);
struct ssi_action ssi_rdma_peer_connect(struct ssi_peer_fsm *peer,
					const struct ssi_local *local,
					struct ssi_peer_facts facts);
bool ssi_rdma_peer_may_connect(const struct ssi_peer_fsm *peer, const struct ssi_local *local,
			       struct ssi_peer_facts facts);
struct ssi_action ssi_rdma_peer_attempt_failed(const struct ssi_peer_fsm *peer,
					       const struct ssi_local *local,
					       struct ssi_peer_facts facts);
struct ssi_action ssi_rdma_peer_closed(struct ssi_peer_fsm *peer, const struct ssi_local *local,
				       struct ssi_peer_facts facts, bool active, bool came_up);
void ssi_rdma_peer_forget(struct ssi_peer_fsm *peer);

#endif
