/* inodes.h — the inode numbers primefs gives the kernel (FUSE-free, so it
 * is tested without a mount). Each entry is a name in its parent entry
 * with a reference count: the kernel's lookups of it (nlookup) plus one
 * per child entry, so that a parent outlives its children and a path can
 * always be rebuilt by walking parents. An entry is freed when its count
 * reaches zero (the kernel forgot it and it has no children): memory
 * follows what the kernel holds, not what it ever saw. A number is reused
 * only once freed, with its generation bumped. Thread-safe. */
#ifndef PRIMEFS_INODES_H
#define PRIMEFS_INODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* The root, as FUSE numbers it: always there, never freed. */
#define INODES_ROOT 1

struct inodes;

struct inodes *inodes_new(void);
void inodes_free(struct inodes *t);

/* The entry `name` of parent (which must exist), added if new; its count
 * goes up by one. Returns its number (0: parent unknown) and sets *gen,
 * and *added when it was new. */
uint64_t inodes_ref(struct inodes *t, uint64_t parent, const char *name,
		    uint64_t *gen, bool *added);
/* The count of ino goes down by n (a FORGET); entries that reach zero are
 * freed, and their parents' counts go down. Returns how many were freed. */
size_t inodes_forget(struct inodes *t, uint64_t ino, uint64_t n);
/* The entry `name` of parent, or 0. */
uint64_t inodes_find(struct inodes *t, uint64_t parent, const char *name);
/* The entry an absolute path names (every component known), or 0; with
 * parent, its parent's number (0 for the root). */
uint64_t inodes_walk(struct inodes *t, const char *path, uint64_t *parent);
/* ino's absolute path ("/" for the root) appended to out; false (out
 * unchanged) when ino is unknown. */
bool inodes_path(struct inodes *t, uint64_t ino, struct buf *out);
/* After a rename: the entry `name` of parent, if any, becomes `newname` of
 * newparent (its children follow); an entry already there is detached
 * first. false when parent or newparent is unknown. */
bool inodes_move(struct inodes *t, uint64_t parent, const char *name,
		 uint64_t newparent, const char *newname);
/* After an unlink or rmdir: the entry keeps its number until forgotten,
 * but has no path any more (inodes_path says false), so a new file of the
 * same name gets a new number. */
void inodes_detach(struct inodes *t, uint64_t parent, const char *name);
/* ino's generation (0 when unknown). */
uint64_t inodes_gen(struct inodes *t, uint64_t ino);
/* Entries held, the root included. */
size_t inodes_count(struct inodes *t);

#endif
