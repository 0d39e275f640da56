/* burn.h — the template's max_hourly (DESIGN.md "Budgets"): the burn
 * rate of the account as this mount sees it, and the check a mkdir (a
 * pod's or a disk's) passes before anything is sent. FUSE-free.
 *
 * The burn rate is the sum of the hourly prices of what bills: every pod
 * that bills (PROVISIONING, PENDING, ACTIVE with its refinements, STOPPED)
 * at its priceHr (STOPPED: its state's price), every disk at its priceHr
 * (a disk bills while it exists), and every request of this mount in
 * flight that no listing shows with a price yet, at the price it was
 * admitted with (a pod counts at its priceHr from the moment it is asked
 * for). Admission and the record of the admitted request are one step
 * under one lock, so two mkdirs at once cannot both pass the cap that only
 * one of them fits under. */
#ifndef PRIMEFS_BURN_H
#define PRIMEFS_BURN_H

#include "cache.h"
#include "template.h"

/* The burn rate now in USD per hour (snapshots as held, within their
 * freshness windows); `detail` (may be NULL) gets how it adds up. */
double burn_hourly(struct cache *c, struct buf *detail);

/* Whether renting `what` ("pods/<name>" or "disks/<name>") at `price` USD
 * per hour keeps the burn rate within the template's max_hourly: 0 (and
 * the request counts from now on), or -EDQUOT with the sum in `log` under
 * `path`. No max_hourly: always 0. */
int burn_admit(struct cache *c, struct template_store *tmpl, const char *what,
	       double price, const char *path);
/* The mkdir admitted as `what` is over. keep: its request may still be
 * in flight with no price shown (a lost answer), so it counts on until a
 * listing shows it priced, or not at all; else it stops counting on its
 * own (refused, or shown with its price). */
void burn_done(const char *what, bool keep);

/* The template's max_hourly: true and *out when set. */
bool burn_max_hourly(struct template_store *tmpl, double *out);
/* USD billed in the last 24 hours: the wallet's recent_billings rows. */
double burn_spent_24h(const struct wallet *w, time_t now);

#endif
