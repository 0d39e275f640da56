/* podfiles.c — see podfiles.h. The clients: a list of one per (pod id,
 * node), under one lock taken for memory work only (never across a wait
 * for the pod or a request). A client lives until unmount: a pod's files
 * may be opened again at any time, and a client holds no connection of
 * its own beyond the pod's SSH session (which the pool closes when the
 * pod goes). */
#include "podfiles.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "nodes.h"
#include "runs.h"
#include "sftp.h"
#include "snapindex.h"

const char *const podfiles_links[] = {"fs", "home", NULL};

const char *podfiles_root_of(const char *name, bool *is_link)
{
	static const char *const roots[] = {".fs", ".home"};
	for (int i = 0; i < 2; i++) {
		if (!strcmp(name, roots[i])) {
			*is_link = false;
			return roots[i];
		}
		if (!strcmp(name, podfiles_links[i])) {
			*is_link = true;
			return roots[i];
		}
	}
	return NULL;
}

bool podfiles_split(const char *path, struct podpath *pp)
{
	memset(pp, 0, sizeof *pp);
	if (strncmp(path, "/pods/", 6))
		return false;
	const char *p = path + 6;
	size_t len = strcspn(p, "/");
	if (!len || len >= sizeof pp->pod || p[len] != '/')
		return false;
	memcpy(pp->pod, p, len);
	p += len + 1;
	/* nodes/<n>/ (n as nodes/ names it: digits, no leading zero) */
	if (!strncmp(p, "nodes/", 6)) {
		const char *d = p + 6;
		len = strspn(d, "0123456789");
		if (!len || len > 6 || d[len] != '/' ||
		    (d[0] == '0' && len > 1))
			return false;
		pp->node = (int)strtol(d, NULL, 10);
		p = d + len + 1;
	}
	len = strcspn(p, "/");
	if (len == 3 && !strncmp(p, ".fs", 3))
		pp->home = false;
	else if (len == 5 && !strncmp(p, ".home", 5))
		pp->home = true;
	else
		return false;
	pp->rest = p + len;
	for (const char *q = pp->rest; *q; q++)
		if (*q == '/')
			pp->depth++;
	return true;
}

struct client {
	char *pod_id;
	int node;
	char *conn;
	struct sftp *sftp;
	char *home; /* once known */
	struct podids ids;
	struct client *next;
};

struct podfiles {
	struct cache *cache;
	struct runs *runs;
	pthread_mutex_t mu;
	struct client *clients;
};

struct podfiles *podfiles_new(struct cache *cache, struct runs *runs)
{
	struct podfiles *pf = xcalloc(1, sizeof *pf);
	pf->cache = cache;
	pf->runs = runs;
	pthread_mutex_init(&pf->mu, NULL);
	return pf;
}

void podfiles_free(struct podfiles *pf)
{
	if (!pf)
		return;
	for (struct client *c = pf->clients, *next; c; c = next) {
		next = c->next;
		sftp_free(c->sftp);
		free(c->pod_id);
		free(c->conn);
		free(c->home);
		free(c);
	}
	pthread_mutex_destroy(&pf->mu);
	free(pf);
}

/* The client of (id, node) at conn: the one there is, else a new one (a
 * pod that came back at another address gets a new one). */
static struct client *client_of(struct podfiles *pf, const char *id, int node,
				const char *conn)
{
	pthread_mutex_lock(&pf->mu);
	struct client *c = pf->clients;
	while (c && !(c->node == node && !strcmp(c->pod_id, id) &&
		      !strcmp(c->conn, conn)))
		c = c->next;
	if (!c) {
		c = xcalloc(1, sizeof *c);
		c->pod_id = xstrdup(id);
		c->node = node;
		c->conn = xstrdup(conn);
		char *key = node_key(id, (size_t)node); /* the pool's key */
		c->sftp = sftp_new(pf->runs->pool, key, conn);
		free(key);
		c->next = pf->clients;
		pf->clients = c;
	}
	pthread_mutex_unlock(&pf->mu);
	return c;
}

struct sftp *podfiles_lend(struct podfiles *pf, const char *id,
			   const char *conn)
{
	return client_of(pf, id, 0, conn)->sftp;
}

/* The pod named pp->pod: its id and, when ready, its connection. */
static int find_pod(struct podfiles *pf, const struct podpath *pp,
		    enum cache_mode mode, char **id, char **conn)
{
	struct snap *s;
	int rc = cache_get(pf->cache, SNAP_PODS, mode, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pp->pod);
	rc = -ENOTCONN;
	if (p && p->id && *p->id) {
		*id = xstrdup(p->id);
		if (pod_ready(p) && (size_t)pp->node < p->ssh.n)
			*conn = xstrdup(p->ssh.v[pp->node]);
		rc = 0;
	}
	snap_put(s);
	return rc;
}

/* Once the pod is ready, node pp->node's connection in *conn (replaced):
 * -ENOTCONN (logged) when the pod has no such node or it has none. */
static int node_conn(struct podfiles *pf, const struct podpath *pp,
		     const char *path, char **conn)
{
	struct snap *s;
	int rc = cache_get(pf->cache, SNAP_PODS, CACHE_HELD, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pp->pod);
	const char *ssh = p && (size_t)pp->node < nodes_count(p)
			      ? node_entry(&p->ssh, (size_t)pp->node)
			      : "";
	if (*ssh) {
		free(*conn);
		*conn = xstrdup(ssh);
	} else {
		plog("run", path, "node %d of the pod has no ssh connection",
		     pp->node);
		rc = -ENOTCONN;
	}
	snap_put(s);
	return rc;
}

int podfiles_client(struct podfiles *pf, const struct podpath *pp,
		    bool (*interrupted)(void *arg), void *arg,
		    struct sftp **client, struct buf *remote,
		    struct podids *ids)
{
	char *id = NULL, *conn = NULL;
	int rc = find_pod(pf, pp, CACHE_HELD, &id, &conn);
	if (rc) /* never seen (nothing held): ask */
		rc = find_pod(pf, pp, CACHE_TTL, &id, &conn);
	if (rc == 0 && !conn) { /* starting, or gone since: as a job waits */
		struct buf path;
		buf_init(&path);
		buf_printf(&path, "/pods/%s/", pp->pod);
		if (pp->node)
			buf_printf(&path, "nodes/%d/", pp->node);
		buf_adds(&path, pp->home ? "home" : "fs");
		rc =
		    runs_wait(pf->runs, id, path.data, interrupted, arg, &conn);
		if (rc == 0 && pp->node) /* ready: node n's connection */
			rc = node_conn(pf, pp, path.data, &conn);
		buf_free(&path);
	}
	if (rc) {
		free(id);
		free(conn);
		return rc == -ENOENT ? -ENOTCONN : rc;
	}
	struct client *c = client_of(pf, id, pp->node, conn);
	free(id);
	free(conn);
	*client = c->sftp;
	pthread_mutex_lock(&pf->mu);
	char *home = c->home ? xstrdup(c->home) : NULL;
	*ids = c->ids;
	pthread_mutex_unlock(&pf->mu);
	if (!home) { /* once per client: the home and its owner */
		struct sftp_attr a;
		rc = sftp_realpath(c->sftp, ".", &home);
		if (!rc && (rc = sftp_stat(c->sftp, home, &a)))
			free(home);
		if (rc)
			return rc;
		pthread_mutex_lock(&pf->mu);
		if (!c->home) {
			c->home = xstrdup(home);
			c->ids.uid = a.uid;
			c->ids.gid = a.gid;
			c->ids.known = (a.flags & SFTP_ATTR_UIDGID) != 0;
		}
		*ids = c->ids;
		pthread_mutex_unlock(&pf->mu);
	}
	if (!pp->home) {
		buf_adds(remote, *pp->rest ? pp->rest : "/");
		free(home);
		return 0;
	}
	buf_adds(remote, home);
	if (*pp->rest) {
		if (remote->len > 1 && remote->data[remote->len - 1] == '/')
			remote->len--;
		buf_adds(remote, pp->rest);
	}
	free(home);
	return 0;
}

void podfiles_link_target(const struct podpath *pp, const char *target,
			  struct buf *out)
{
	if (target[0] != '/') {
		buf_adds(out, target);
		return;
	}
	/* From the link's directory up to .fs (through .home's parent). */
	int ups = pp->depth - 1 + (pp->home ? 1 : 0);
	for (int i = 0; i < ups; i++)
		buf_adds(out, "../");
	if (pp->home)
		buf_adds(out, ".fs/");
	while (*target == '/')
		target++;
	buf_adds(out, target);
	if (!out->len)
		buf_adds(out, ".");
	else if (out->data[out->len - 1] == '/' && out->len > 1 && !*target)
		out->data[--out->len] = '\0'; /* "/": "../.." */
}
