/* keyfiles.h — ssh_keys/ (DESIGN.md, "The account"): one file per key of
 * the account (its public key line), `primary` a link to the primary key.
 * A new file written there registers a key (POST at close; bad text:
 * EINVAL, the reason in log), rm deletes one, a symlink made as `primary`
 * (or under another name and renamed over `primary`, as `ln -sfn` does)
 * makes its target the primary key. Names being made (a file being
 * written, a link not yet renamed) are drafts: they resolve until their
 * writer closes or their rename comes. FUSE-free. */
#ifndef PRIMEFS_KEYFILES_H
#define PRIMEFS_KEYFILES_H

#include "tree.h"

/* Steps from ssh_keys/ (n, its keys snapshot held) into `name`. */
int keys_step(struct tree *t, struct node *n, const char *name);
int keys_list(const struct snap *s, add_fn add, void *ctx);
int keys_readlink(const struct node *n, struct buf *out);
/* Tells the kernel what a new keys snapshot may have changed. */
void keys_changed(struct tree *t);

/* Frees every draft (tree_free: no request in flight). */
void keys_free(void);

extern const struct file_def key_file, newkey_file;

#endif
