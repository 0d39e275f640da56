/* nodes.c — see nodes.h. Pure functions of a pod and a pods snapshot. */
#include "nodes.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t nodes_count(const struct pod *p)
{
	return p->ssh.n > p->ip.n ? p->ssh.n : p->ip.n;
}

char *node_key(const char *pod_id, size_t n)
{
	struct buf b;
	buf_init(&b);
	if (n)
		buf_printf(&b, "%s-%zu", pod_id, n);
	else
		buf_adds(&b, pod_id);
	return buf_steal(&b);
}

const struct pod *nodes_find(const struct snap *s, const char *key,
			     size_t *node)
{
	*node = 0;
	const struct pod *p = snap_pod(s, key);
	if (p)
		return p;
	/* `<pod id>-<n>`: n decimal, 1 or more, no leading zero. */
	const char *dash = strrchr(key, '-');
	if (!dash || dash == key || dash[1] < '1' || dash[1] > '9' ||
	    strspn(dash + 1, "0123456789") != strlen(dash + 1) ||
	    strlen(dash + 1) > 6)
		return NULL;
	char *id = xstrndup(key, (size_t)(dash - key));
	p = snap_pod_id(s, id);
	free(id);
	size_t n = (size_t)strtoul(dash + 1, NULL, 10);
	if (!p || n >= nodes_count(p))
		return NULL;
	*node = n;
	return p;
}

const char *node_entry(const struct strlist *l, size_t n)
{
	return n < l->n && l->v[n] ? l->v[n] : "";
}

/* A value as one shell word: single-quoted. */
static void add_quoted(struct buf *out, const char *s)
{
	buf_addc(out, '\'');
	for (; *s; s++)
		if (*s == '\'')
			buf_adds(out, "'\\''");
		else
			buf_addc(out, *s);
	buf_addc(out, '\'');
}

void nodes_env(const struct pod *p, size_t n, struct buf *out)
{
	size_t count = nodes_count(p);
	if (count < 2)
		return;
	buf_printf(out, "export PRIME_NODE_RANK=%zu PRIME_NUM_NODES=%zu ", n,
		   count);
	buf_adds(out, "PRIME_MASTER_ADDR=");
	add_quoted(out, node_entry(&p->ip, 0));
	buf_printf(out, " PRIME_MASTER_PORT=%d\n", NODES_MASTER_PORT);
}

char *nodes_pod_id(struct cache *c, const char *key)
{
	struct snap *s;
	char *id = NULL;
	if (cache_get(c, SNAP_PODS, CACHE_TTL, &s) == 0) {
		size_t node;
		const struct pod *p = nodes_find(s, key, &node);
		if (p && node)
			id = xstrdup(p->id);
		snap_put(s);
	}
	return id ? id : xstrdup(key);
}

int nodes_conn(struct cache *c, const char *key, const char *path, char **conn,
	       struct buf *env)
{
	struct snap *s;
	if (cache_get(c, SNAP_PODS, CACHE_HELD, &s))
		return 0; /* nothing held: the pod's own, as waited for */
	size_t node;
	const struct pod *p = nodes_find(s, key, &node);
	int rc = 0;
	if (p && nodes_count(p) > 1) {
		const char *ssh = node_entry(&p->ssh, node);
		if (*ssh) {
			free(*conn);
			*conn = xstrdup(ssh);
			nodes_env(p, node, env);
		} else {
			plog("run", path,
			     "node %zu of the pod has no ssh connection: "
			     "nothing "
			     "was sent",
			     node);
			rc = -ENOTCONN;
		}
	}
	snap_put(s);
	return rc;
}
