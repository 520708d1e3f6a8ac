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

/* Reasons carried in a connection reject (also in tests/tools/ssi-hostile.c). */
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

int ssi_rdma_conn_start(u32 self, u32 abi, u32 incarnation, u16 port);
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

#endif
