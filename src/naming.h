/* naming.h — the directory names of DESIGN.md: offers named for what they are
 * (provider, data center or country, socket, GPU count; security and spot
 * only where they tell two apart; a numeric suffix only for true twins), GPU
 * type directories, and pods under their name when that is safe and unique,
 * else under their id. Every name is made of [A-Za-z0-9._-] and never
 * starts with '.', so nothing a server sends can become "..", a hidden file
 * or a path separator. */
#ifndef PRIMEFS_NAMING_H
#define PRIMEFS_NAMING_H

#include "model.h"

/* The symlink in each GPU type directory to its cheapest offer in stock;
 * no offer is given this name. */
#define OFFER_LINK_NAME "cheapest"

/* The directory name of a GPU type, or NULL when nothing of it is usable. */
char *gpu_type_dir(const char *gpu_type);

/* Gives each offer of one GPU type directory its ->name: unique within the
 * set, and the same for an offer whatever order the API lists them in. */
void name_offers(struct offer **offers, size_t n);

/* Gives each pod its ->dir: its name when that is safe, not hidden (no
 * leading '.'), unique and no pod's id; else its id. Ids must already be
 * unique, safe_name() and not hidden (dedupe_pods). */
void name_pods(struct pod *pods, size_t n);

/* Keeps one pod per id (the most recently updated; the first on a tie)
 * and drops pods whose id is not a safe name or starts with '.', logging
 * each drop. Returns
 * the new count; dropped pods are freed. */
size_t dedupe_pods(struct pod *pods, size_t n, const char *what);

#endif
