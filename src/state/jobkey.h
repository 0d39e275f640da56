/* jobkey.h — which registered key of the account a new pod gets: the one
 * whose key blob (never its comment) is that of a key primefs will use for
 * its jobs — the ssh agent's keys, then the public half (<file>.pub) of the
 * key file (-o ssh_key=, else the Prime CLI's ssh_key_path); with -o
 * ssh_key= only that file. A pod made with a key that jobs cannot use is
 * money spent for nothing, so mkdir is refused when none is registered. */
#ifndef PRIMEFS_JOBKEY_H
#define PRIMEFS_JOBKEY_H

#include <stdbool.h>

#include "cache.h"

struct jobkey {
	const char *key_path;	/* private key file for jobs, or NULL */
	bool key_explicit;	/* -o ssh_key=: that file only, no agent */
	const char *mountpoint; /* for the log's `cp` line, or NULL */
};

/* 0 and *id (to free) for the body's sshKeyId — NULL when primefs has no
 * key of its own at all (nothing to match: logged, the API's default
 * applies) — or -EACCES when no registered key matches (logged with the
 * `cp <key>.pub <mnt>/ssh_keys/<name>` that registers it), or the
 * listing's -errno. `path` names the mkdir in the log. */
int jobkey_id(const struct jobkey *k, struct cache *c, const char *path,
	      char **id);
/* The same against the keys listing `keys` alone (primefs --check, which
 * lists them itself): nothing is fetched. */
int jobkey_id_in(const struct jobkey *k, const struct snap *keys,
		 const char *path, char **id);

#endif
