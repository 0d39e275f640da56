/* nodes.h — the nodes of a multi-node pod (a cluster). The API lists a
 * cluster as ONE pod whose sshConnection and ip are lists, one entry per
 * node in node order, and which carries a clusterId (APIPodConfig).
 *
 * Node keys (an invariant spanning modules, written once here): whatever
 * is kept per node — SSH sessions (ssh_pool's pod_key), known_hosts names,
 * jobs (jobs.c's pod id) — is keyed by the node key, `<pod id>` for node
 * 0 and `<pod id>-<n>` for node n >= 1. So a pod's own run, exit and
 * jobs/ are node 0's, and a single-node pod has only node 0. */
#ifndef PRIMEFS_NODES_H
#define PRIMEFS_NODES_H

#include "cache.h"
#include "model.h"
#include "snapindex.h"

/* torchrun's default port: what PRIME_MASTER_PORT says. */
#define NODES_MASTER_PORT 29500

/* How many nodes the pod has: its lists' length (1 for a plain string, 0
 * while it has no ssh or ip at all). */
size_t nodes_count(const struct pod *p);
/* The node key of node n of the pod with this id (a new string). */
char *node_key(const char *pod_id, size_t n);
/* The pod a node key (or a pod's name or id) names in the pods snapshot
 * s, and the node's index (*node; 0 for a pod's own name or id); NULL
 * when none. A key of a node the pod does not have names nothing. */
const struct pod *nodes_find(const struct snap *s, const char *key,
			     size_t *node);
/* Node n's entry of a list (ssh or ip): "" when it has none. */
const char *node_entry(const struct strlist *l, size_t n);
/* What a job on node n of a multi-node pod gets before its script:
 * `export PRIME_NODE_RANK=.. PRIME_NUM_NODES=.. PRIME_MASTER_ADDR=..
 * PRIME_MASTER_PORT=..` and a newline (nothing for a single-node pod). */
void nodes_env(const struct pod *p, size_t n, struct buf *out);

/* For runs.c: the id of the pod a node key names (a new string; the key
 * itself when the pods listing held names no node of it), so that the pod
 * is waited for as a whole. */
char *nodes_pod_id(struct cache *c, const char *key);
/* For runs.c, once the pod is ready: node key's connection in *conn
 * (replaced) and what its job gets before the script in *env (nodes_env);
 * -ENOTCONN (logged under path) when the node has no connection. Nothing
 * changes for a single-node pod. */
int nodes_conn(struct cache *c, const char *key, const char *path, char **conn,
	       struct buf *env);

#endif
