/* plan.h — the dry run of `mkdir pods/<name>` (plan/<name>): the offer
 * that mkdir would rent now with the template's keys for that name, its
 * price and image, and the next few candidates; or why none fits, in the
 * words mkdir's log line uses. The same chooser as mkdir (choose.h), and
 * nothing is sent but listings. */
#ifndef PRIMEFS_PLAN_H
#define PRIMEFS_PLAN_H

#include "cache.h"
#include "template.h"

/* Candidates shown after the chosen offer. */
#define PLAN_NEXT 5

/* The plan as `key = value` lines: offer, price, image, next (one line
 * each) — or offer empty and why. 0, or the offers listing's -errno. */
int plan_text(struct cache *c, struct template_store *tmpl, const char *team_id,
	      const char *name, struct buf *out);

#endif
