/* naming.h — the directory names of DESIGN.md: offers named for what they are,
 * from their own fields only (provider, data center or country, socket, GPU
 * count, then -community and -spot; twins, offers alike in all of that, add
 * a hash of their identity), GPU type directories, and pods under their name
 * when that is safe and unique, else under their id. Every name is made of
 * [A-Za-z0-9._-] and never starts with '.', so nothing a server sends can
 * become "..", a hidden file or a path separator. */
#ifndef PRIMEFS_NAMING_H
#define PRIMEFS_NAMING_H

#include "model.h"

/* The root directory of links to each type's cheapest rentable offer. No
 * offer is given this name either, so the path of the link that once sat in
 * each type directory never names an offer. */
#define CHEAPEST_NAME "cheapest"

/* The directory name of a GPU type, or NULL when nothing of it is usable. */
char *gpu_type_dir(const char *gpu_type);

/* Gives each offer of one GPU type directory its ->name: unique within the
 * set, and made from the offer's own fields, so it is the same whatever
 * order the API lists them in and whatever their prices and stock; it
 * changes only when a twin of the offer appears or goes. Twins get "-"
 * and 6 hex digits of a hash of their identity (16 where 6 would clash);
 * offers alike in all but price and stock, a last-resort "-N". */
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

/* Gives each SSH key its ->dir as name_pods does for pods (by its name
 * when safe, visible, unique, no key's id and not "primary", else by its
 * id); NULL for a key whose id is not a safe name either (not listed). */
struct ssh_key;
void name_keys(struct ssh_key *keys, size_t n);

#endif
