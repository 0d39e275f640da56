/* fs.h — the thin FUSE layer, on libfuse's low-level API: each request's
 * inode becomes a path (inodes.h), which the tree resolves and answers;
 * one reply per request. */
#ifndef PRIMEFS_FS_H
#define PRIMEFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "tree.h"

struct runs;
struct jobs;
struct guards;
struct podfiles;

struct primefs {
	struct tree *tree;
	struct cache *cache;
	struct runs *runs;
	struct jobs *jobs;
	struct guards *guards;	/* its timer starts at init; may be NULL */
	struct lifecycle *life; /* its settler starts at init; may be NULL */
	const char *mountpoint; /* absolute, physical; NULL if unknown */
	/* How long the kernel may keep entries and attributes (the shortest
	 * freshness window); changes primefs learns of are told at once. */
	double kernel_ttl;
	/* A pod's files under fs and home (podfiles.h), and how long the
	 * kernel keeps their entries and attributes (-o fs_ttl=). */
	struct podfiles *pods;
	double fs_ttl;
};

/* libfuse's own options, for --help. */
void fs_help(void);
/* Parses libfuse's options and the mountpoint from args, mounts, goes to
 * the background unless -f or -d, and serves until unmounted. The exit
 * status fuse_main would give: 0, or 1 to 7 by what failed. */
int fs_main(struct fuse_args *args, struct primefs *pf);

#endif
