/* plan.c — see plan.h. */
#include "plan.h"

#include <stdlib.h>

#include "choose.h"
#include "naming.h"

static void offer_path(const struct offer *o, struct buf *out)
{
	char *type = o->gpu_type ? gpu_type_dir(o->gpu_type) : NULL;
	buf_printf(out, "availability/%s/%s", type ? type : "?", o->name);
	free(type);
}

int plan_text(struct cache *c, struct template_store *tmpl, const char *team_id,
	      const char *name, struct buf *out)
{
	struct pod_spec spec;
	template_store_resolve(tmpl, name, &spec);
	struct snap *offers;
	int rc = cache_get(c, SNAP_OFFERS, CACHE_TTL, &offers);
	if (rc) {
		pod_spec_free(&spec);
		return rc;
	}
	const struct offer *v[PLAN_NEXT + 1];
	size_t n;
	struct buf why;
	buf_init(&why);
	json_object *body = NULL;
	if (choose_ranked(offers, &spec, v, PLAN_NEXT + 1, &n, &why)) {
		buf_printf(out, "offer =\nwhy = no offer chosen: %s\n",
			   why.data);
		goto out;
	}
	buf_adds(out, "offer = ");
	offer_path(v[0], out);
	buf_adds(out, "\nprice = ");
	fmt_number(out, choose_price(v[0], &spec));
	buf_adds(out, "\nimage = ");
	body = create_body(v[0], &spec, name, team_id, &why);
	json_object *pod = body ? json_object_object_get(body, "pod") : NULL;
	json_object *image = pod ? json_object_object_get(pod, "image") : NULL;
	if (image)
		buf_adds(out, json_object_get_string(image));
	else if (body)
		buf_adds(out, "ubuntu_22_cuda_12"); /* the API's default */
	buf_addc(out, '\n');
	if (!body) /* mkdir would fail with EINVAL: say why */
		buf_printf(out, "why = %s\n", why.data);
	for (size_t i = 1; i < n; i++) {
		buf_adds(out, "next = ");
		offer_path(v[i], out);
		buf_addc(out, ' ');
		fmt_number(out, choose_price(v[i], &spec));
		buf_addc(out, '\n');
	}
out:
	json_object_put(body);
	snap_put(offers);
	pod_spec_free(&spec);
	buf_free(&why);
	return 0;
}
