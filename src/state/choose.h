/* choose.h — what mkdir sends: the cheapest in-stock offer that fits the
 * template (and, when none does, which filter emptied the list), and the
 * POST /pods body built from that complete offer as PRIME_API.md 5.4 says.
 * Pure functions over the model, for unit tests. */
#ifndef PRIMEFS_CHOOSE_H
#define PRIMEFS_CHOOSE_H

#include "cache.h"
#include "template.h"

/* 0 and *out, or -ENOSPC (no offer fits; why says which filter emptied
 * the list) or -EINVAL (the template cannot choose: why says so). */
int choose_offer(const struct snap *offers, const struct pod_spec *spec,
		 const struct offer **out, struct buf *why);

/* The offer's hourly price for the template: its listed price (unset when
 * it has none), plus, for each of disk_size, vcpus and memory the template
 * asks beyond the offer's default, the units beyond it (rounded up to the
 * resource's step) × its pricePerUnit. What max_price and the choice
 * compare. */
struct num offer_price_for(const struct offer *o, const struct pod_spec *spec);

/* The body of POST /pods, or NULL with the reason in why (-EINVAL). */
json_object *create_body(const struct offer *o, const struct pod_spec *spec,
			 const char *name, const char *team_id,
			 struct buf *why);

/* The same choice, ranked (plan/): up to `max` offers that fit in out,
 * choose_offer's first, then the cheapest of the rest; their count in *n.
 * 0, or choose_offer's -errno and why. */
int choose_ranked(const struct snap *offers, const struct pod_spec *spec,
		  const struct offer **out, size_t max, size_t *n,
		  struct buf *why);
/* The hourly price the ranking compares (and plan/ shows). */
double choose_price(const struct offer *o, const struct pod_spec *spec);

#endif
