/* tree_disks.c — the renderers of what only disks, disk offers and the
 * budget have: a disk's size and the pods using it (by their names in
 * pods/), a disk offer's largest size, and the root's budget file
 * (budget.h). What disks share with pods is the pods' renderers'. */
#include "tree_int.h"

#include <stdlib.h>

#include "burn.h"
#include "disks.h"

int r_disk_size(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	num_render(out, disk_size(obj));
	buf_addc(out, '\n');
	return 0;
}

/* One line per pod the disk is attached to: its directory name in pods/
 * when listed there, else its id. */
int r_disk_pods(struct tree *t, const void *obj, struct buf *out)
{
	struct strlist ids;
	disk_pod_ids(obj, &ids);
	struct snap *pods = NULL;
	if (ids.n && cache_get(t->o.cache, SNAP_PODS, CACHE_TTL, &pods))
		pods = NULL;
	for (size_t i = 0; i < ids.n; i++) {
		const struct pod *p = pods ? snap_pod_id(pods, ids.v[i]) : NULL;
		buf_adds(out, p ? p->dir : ids.v[i]);
		buf_addc(out, '\n');
	}
	if (pods)
		snap_put(pods);
	strlist_free(&ids);
	return 0;
}

int r_doffer_max_size(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	num_render(out, ((const struct offer *)obj)->disk.max);
	buf_addc(out, '\n');
	return 0;
}

int r_budget(struct tree *t, const void *obj, struct buf *out)
{
	(void)obj;
	buf_printf(out, "burn_hourly = %.4f\n", burn_hourly(t->o.cache, NULL));
	double max;
	if (burn_max_hourly(t->o.tmpl, &max))
		buf_printf(out, "max_hourly = %g\n", max);
	else
		buf_adds(out, "max_hourly =\n");
	struct snap *w;
	if (cache_get(t->o.cache, SNAP_WALLET, CACHE_TTL, &w) == 0) {
		buf_printf(out, "spent_24h = %.4f\n",
			   burn_spent_24h(&w->wallet, time(NULL)));
		snap_put(w);
	} else {
		buf_adds(out, "spent_24h =\n");
	}
	return 0;
}
