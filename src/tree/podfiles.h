/* podfiles.h — pods/<pod>/fs and home, without FUSE: which paths are a
 * pod's files, the SFTP client of each pod (made at the first path that
 * needs it: a crawl that never goes under .fs or .home opens nothing), the
 * pod's path for a path of the mount, and the symlink rule.
 *
 * `fs` and `home` are links to `.fs` (the pod's /) and `.home` (the pod
 * user's home, sftp_realpath(".")); those two resolve by name but are in no
 * listing, and the tree answers their own stat (D_PODFS). Everything below
 * them is the pod's (fs_pod.c serves it through the SFTP client).
 *
 * A pod still starting is waited for as a job waits (runs_wait); one that
 * will never start gives ENOTCONN at once. A multi-node pod's
 * nodes/<n>/ has its own fs, home, .fs and .home, served by node n's
 * client (its own SSH session, under the node key of nodes.h); the pod's
 * own are node 0's. Thread-safe. */
#ifndef PRIMEFS_PODFILES_H
#define PRIMEFS_PODFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cache;
struct runs;
struct sftp;
struct sftp_attr;

/* The names a pod's directory lists for its files: "fs", "home". */
extern const char *const podfiles_links[];
/* For a name in a pod's directory: ".fs" or ".home" when name is one of
 * them (*is_link false) or one of the links to them (*is_link true);
 * NULL for other names. */
const char *podfiles_root_of(const char *name, bool *is_link);

/* A path of the mount under a pod's .fs or .home. */
struct podpath {
	char pod[256];	  /* the pod's name in pods/ */
	int node;	  /* from nodes/<n>/; 0: the pod's own */
	bool home;	  /* under .home, else .fs */
	const char *rest; /* into the path: "" (the root) or "/a/b" */
	int depth;	  /* components in rest */
};

/* Whether path is .fs or .home of a pod or of a node of it
 * (pods/<p>/nodes/<n>/.fs), or under one. */
bool podfiles_split(const char *path, struct podpath *pp);

struct podfiles;
struct podfiles *podfiles_new(struct cache *cache, struct runs *runs);
/* Every file of every client must be closed first. */
void podfiles_free(struct podfiles *pf);

/* The pod user's ids (the owner of its home), shown as the mounting
 * user's, as sshfs's idmap=user does: so that the kernel's permission
 * checks under allow_other (default_permissions) let the mounting user do
 * what the pod user may. */
struct podids {
	uint32_t uid, gid;
	bool known;
};

/* The SFTP client of pp's pod (waiting for a starting pod as a job does;
 * interrupted as sftp_set_interrupt says) and the pod's path for pp,
 * appended to remote. 0 or -errno: ENOTCONN, EINTR, EHOSTUNREACH, ... */
int podfiles_client(struct podfiles *pf, const struct podpath *pp,
		    bool (*interrupted)(void *arg), void *arg,
		    struct sftp **client, struct buf *remote,
		    struct podids *ids);

/* Node 0's SFTP client of the pod with this id and connection (made on
 * first use, kept until podfiles_free): what `collect` borrows, since the
 * pool takes one SFTP client per pod at a time (sftp.h). */
struct sftp *podfiles_lend(struct podfiles *pf, const char *id,
			   const char *conn);

/* What readlink shows for a link at pp whose target on the pod is
 * target: as written when relative; an absolute one as a relative path
 * to the same place under the pod's .fs, so that no link resolves to a
 * file of this machine. */
void podfiles_link_target(const struct podpath *pp, const char *target,
			  struct buf *out);

#endif
