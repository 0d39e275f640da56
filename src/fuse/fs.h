/* fs.h — the thin FUSE layer: each operation resolves its path through the
 * tree and answers from it; one reply path per request. */
#ifndef PRIMEFS_FS_H
#define PRIMEFS_FS_H

#define FUSE_USE_VERSION 31
#include <fuse.h>

#include "tree.h"

struct runs;
struct jobs;
struct guards;

struct primefs {
	struct tree *tree;
	struct cache *cache;
	struct runs *runs;
	struct jobs *jobs;
	struct guards *guards;	/* its timer starts at init; may be NULL */
	const char *mountpoint; /* absolute, physical; NULL if unknown */
	/* How long the kernel may keep entries and attributes (the shortest
	 * freshness window); changes primefs learns of are told at once. */
	double kernel_ttl;
};

extern const struct fuse_operations primefs_ops;

#endif
