/* test_choose.c — which offer mkdir rents and what it sends, over offers
 * made here field by field: stock, prepaid time, `offer =`, the image the
 * API defaults to, environment variables and maxPrice. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "choose.h"
#include "log.h"
#include "t.h"
#include "template.h"

/* An offer's JSON with the fields a test varies. */
static void offer_json(struct buf *b, const char *provider, const char *dc,
		       double price, const char *stock, const char *prepaid,
		       const char *images)
{
	buf_printf(b,
		   "{\"cloudId\":\"X\",\"gpuType\":\"H100_80GB\","
		   "\"socket\":\"PCIe\",\"provider\":\"%s\","
		   "\"dataCenter\":\"%s\",\"country\":\"US\",\"gpuCount\":1,"
		   "\"gpuMemory\":80,\"stockStatus\":%s,"
		   "\"security\":\"secure_cloud\",\"prices\":{\"onDemand\":%g,"
		   "\"communityPrice\":null},\"images\":%s,\"isSpot\":false,"
		   "\"prepaidTime\":%s}",
		   provider, dc, stock, price, images, prepaid);
}

static struct snap *offers(const char *const *json, size_t n)
{
	struct offer_list l = {xcalloc(n, sizeof(struct offer)), 0};
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(json[i]);
		if (offer_parse(o, false, &l.v[l.n]) == 0)
			l.n++;
		json_object_put(o);
	}
	return snap_from_offers(&l);
}

/* A snapshot of one H100 offer in stock: this provider, price and images. */
static struct snap *one_offer(const char *provider, double price,
			      const char *images)
{
	struct buf j;
	buf_init(&j);
	offer_json(&j, provider, "DC", price, "\"High\"", "null", images);
	const char *json[] = {j.data};
	struct snap *s = offers(json, 1);
	buf_free(&j);
	return s;
}

static int choose(struct snap *s, const char *tmpl, const struct offer **o,
		  struct pod_spec *spec, struct buf *why)
{
	struct template t;
	buf_reset(why);
	if (template_parse(tmpl, &t, why) != 0) {
		printf("# bad template: %s\n", why->data);
		return -1000;
	}
	template_resolve(&t, "p", spec);
	template_free(&t);
	return choose_offer(s, spec, o, why);
}

/* The data center of the offer the template rents, or the errno text. */
static char result[256];
static const char *rents(struct snap *s, const char *tmpl)
{
	const struct offer *o;
	struct pod_spec spec;
	struct buf why;
	buf_init(&why);
	int rc = choose(s, tmpl, &o, &spec, &why);
	if (rc == 0)
		snprintf(result, sizeof result, "%s", o->data_center);
	else
		snprintf(result, sizeof result, "%s",
			 rc == -ENOSPC	 ? "ENOSPC"
			 : rc == -EINVAL ? "EINVAL"
					 : "other");
	printf("# %s -> %s (%s)\n", tmpl, result, why.data ? why.data : "");
	pod_spec_free(&spec);
	buf_free(&why);
	return result;
}

static const char *const ALL = "[\"ubuntu_22_cuda_12\",\"vllm\"]";

static void test_stock_and_prepaid(void)
{
	struct buf a, b, c, d;
	buf_init(&a);
	buf_init(&b);
	buf_init(&c);
	buf_init(&d);
	offer_json(&a, "hyperstack", "CHEAP-UNAVAIL", 1.0, "\"Unavailable\"",
		   "null", ALL);
	offer_json(&b, "hyperstack", "PREPAID", 1.5, "\"High\"", "720", ALL);
	offer_json(&c, "hyperstack", "LOW", 2.0, "\"Low\"", "null", ALL);
	offer_json(&d, "hyperstack", "NOSTOCK", 0.5, "null", "null", ALL);
	const char *json[] = {a.data, b.data, c.data, d.data};
	struct snap *s = offers(json, 4);
	/* Unavailable is never rented; prepaid only with prepaid = true. */
	CHECK_STR(rents(s, "gpu_type = H100_80GB\n"), "LOW");
	CHECK_STR(rents(s, "gpu_type = H100_80GB\nprepaid = true\n"),
		  "PREPAID");
	CHECK_STR(rents(s, "gpu_type = H100_80GB\nprepaid = false\n"), "LOW");
	/* cheapest/ is the same choice. */
	const struct gpu_type *g = snap_type(s, "H100_80GB");
	CHECK(g && type_cheapest(g) &&
	      !strcmp(type_cheapest(g)->data_center, "LOW"));
	/* offer = names one exactly; it is still checked for stock. */
	char tmpl[256];
	for (size_t i = 0; i < type_n_offers(g); i++) {
		snprintf(tmpl, sizeof tmpl, "offer = H100_80GB/%s\n",
			 type_offer_at(g, i)->name);
		const char *dc = type_offer_at(g, i)->data_center;
		if (!strcmp(dc, "CHEAP-UNAVAIL") || !strcmp(dc, "NOSTOCK"))
			CHECK_STR(rents(s, tmpl), "ENOSPC");
		else
			CHECK_STR(rents(s, tmpl), dc);
		snprintf(tmpl, sizeof tmpl,
			 "offer = H100_80GB/%s\nmax_price = 1.9\n",
			 type_offer_at(g, i)->name);
		if (!strcmp(dc, "PREPAID"))
			CHECK_STR(rents(s, tmpl), "PREPAID");
		if (!strcmp(dc, "LOW"))
			CHECK_STR(rents(s, tmpl), "ENOSPC");
	}
	CHECK_STR(rents(s, "offer = H100_80GB/nothing-like-it\n"), "ENOSPC");
	CHECK_STR(rents(s, "offer = A100_80GB/x\n"), "ENOSPC");
	snap_put(s);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
	buf_free(&d);
}

/* The image create_body sends for one offer, or "EINVAL". */
static char img[256];
static const char *image_for(const char *images, const char *provider,
			     const char *tmpl)
{
	struct snap *s = one_offer(provider, 1.0, images);
	const struct offer *o = NULL;
	struct pod_spec spec;
	struct buf why;
	buf_init(&why);
	int rc = choose(s, tmpl, &o, &spec, &why);
	json_object *body =
	    rc == 0 ? create_body(o, &spec, "p", NULL, &why) : NULL;
	if (rc == -ENOSPC)
		snprintf(img, sizeof img, "ENOSPC");
	else if (!body)
		snprintf(img, sizeof img, "EINVAL");
	else
		snprintf(img, sizeof img, "%s",
			 jx_str(jx_obj(body, "pod"), "image")
			     ? jx_str(jx_obj(body, "pod"), "image")
			     : "null");
	printf("# %s %s %s -> %s (%s)\n", images, provider, tmpl, img,
	       why.data ? why.data : "");
	json_object_put(body);
	pod_spec_free(&spec);
	buf_free(&why);
	snap_put(s);
	return img;
}

static void test_image(void)
{
	const char *base = "gpu_type = H100_80GB\n";
	const char *env = "gpu_type = H100_80GB\nenv.K = v\n";
	CHECK_STR(image_for(ALL, "hyperstack", base), "ubuntu_22_cuda_12");
	CHECK_STR(image_for("null", "hyperstack", base), "ubuntu_22_cuda_12");
	CHECK_STR(image_for("[]", "hyperstack", base), "ubuntu_22_cuda_12");
	CHECK_STR(image_for("[\"vllm\"]", "hyperstack", base), "vllm");
	CHECK_STR(image_for("[\"vllm\",\"flux\"]", "hyperstack", base),
		  "EINVAL");
	CHECK_STR(image_for("[\"vllm\",\"flux\"]", "hyperstack",
			    "gpu_type = H100_80GB\nimage = flux\n"),
		  "flux");
	/* With env vars: runpod offers and ubuntu_22_cuda_12 are out, and
	 * offers left with no image. */
	CHECK_STR(image_for(ALL, "hyperstack", env), "vllm");
	CHECK_STR(image_for(ALL, "runpod", env), "ENOSPC");
	CHECK_STR(image_for("[\"ubuntu_22_cuda_12\"]", "hyperstack", env),
		  "ENOSPC");
	CHECK_STR(image_for("null", "hyperstack", env), "ENOSPC");
	CHECK_STR(image_for(ALL, "hyperstack",
			    "gpu_type = H100_80GB\nenv.K = v\n"
			    "image = ubuntu_22_cuda_12\n"),
		  "ENOSPC");
	CHECK_STR(image_for("[\"ubuntu_22_cuda_12\",\"vllm\",\"flux\"]",
			    "hyperstack", env),
		  "EINVAL");
}

static void test_max_price_sent(void)
{
	struct snap *s = one_offer("hyperstack", 1.25, ALL);
	const struct offer *o = NULL;
	struct pod_spec spec;
	struct buf why;
	buf_init(&why);
	CHECK(choose(s, "gpu_type = H100_80GB\nmax_price = 2.5\n", &o, &spec,
		     &why) == 0);
	json_object *body = create_body(o, &spec, "p", NULL, &why);
	json_object *mp = NULL;
	json_object_object_get_ex(jx_obj(body, "pod"), "maxPrice", &mp);
	CHECK(mp && json_object_get_double(mp) == 2.5);
	json_object_put(body);
	pod_spec_free(&spec);
	CHECK(choose(s, "gpu_type = H100_80GB\n", &o, &spec, &why) == 0);
	body = create_body(o, &spec, "p", NULL, &why);
	mp = (json_object *)1;
	CHECK(json_object_object_get_ex(jx_obj(body, "pod"), "maxPrice", &mp) &&
	      mp == NULL);
	json_object_put(body);
	pod_spec_free(&spec);
	/* A bad template file on disk: mkdir refuses with its reason. */
	memset(&spec, 0, sizeof spec);
	spec.invalid = xstrdup("the template file x is bad (line 2: ...)");
	spec.gpu_type = xstrdup("H100_80GB");
	buf_reset(&why);
	CHECK(choose_offer(s, &spec, &o, &why) == -EINVAL &&
	      strstr(why.data, "line 2"));
	pod_spec_free(&spec);
	buf_free(&why);
	snap_put(s);
}

/* An offer with a disk spec: default 100 GB, up to 2000, `ppu` USD per
 * GB-hour beyond the default in steps of `step`. */
static void disk_offer(struct buf *b, const char *dc, double price, double ppu,
		       int step)
{
	offer_json(b, "hyperstack", dc, price, "\"High\"", "null", ALL);
	b->len--; /* the closing brace */
	buf_printf(b,
		   ",\"disk\":{\"minCount\":20,\"defaultCount\":100,"
		   "\"maxCount\":2000,\"pricePerUnit\":%g,\"step\":%d,"
		   "\"defaultIncludedInPrice\":true,"
		   "\"additionalInfo\":null}}",
		   ppu, step);
}

/* A template asking more than an offer includes pays the offer's
 * per-unit price for the units beyond the default, rounded up to its
 * step: for max_price and for the choice. */
static void test_price_per_unit(void)
{
	struct buf a, b;
	buf_init(&a);
	buf_init(&b);
	disk_offer(&a, "CHEAP-BASE", 1.0, 0.01, 10); /* +1 GB: +10 × 0.01 */
	disk_offer(&b, "FLAT-DISK", 1.05, 0.0001, 1);
	const char *json[] = {a.data, b.data};
	struct snap *s = offers(json, 2);
	const struct gpu_type *g = snap_type(s, "H100_80GB");
	const struct offer *cheap = NULL, *flat = NULL;
	for (size_t i = 0; i < type_n_offers(g); i++) {
		const struct offer *o = type_offer_at(g, i);
		if (!strcmp(o->data_center, "CHEAP-BASE"))
			cheap = o;
		else
			flat = o;
	}
	CHECK(cheap && flat && cheap->disk.ppu == 0.01 &&
	      cheap->disk.step == 10);
	struct pod_spec spec;
	memset(&spec, 0, sizeof spec);
	/* Nothing asked beyond the default: the listed price. */
	spec.disk_size = 100;
	CHECK(offer_price_for(cheap, &spec).d == 1.0);
	/* 101 GB: 1 GB beyond, rounded up to a step of 10. */
	spec.disk_size = 101;
	CHECK(fabs(offer_price_for(cheap, &spec).d - 1.1) < 1e-9);
	spec.disk_size = 600; /* 500 beyond: +5 */
	CHECK(fabs(offer_price_for(cheap, &spec).d - 6.0) < 1e-9);
	CHECK(fabs(offer_price_for(flat, &spec).d - 1.1) < 1e-9);
	/* The choice: by the base price with the default disk, by the true
	 * price with a big one. */
	CHECK_STR(rents(s, "gpu_type = H100_80GB\n"), "CHEAP-BASE");
	CHECK_STR(rents(s, "gpu_type = H100_80GB\ndisk_size = 100\n"),
		  "CHEAP-BASE");
	CHECK_STR(rents(s, "gpu_type = H100_80GB\ndisk_size = 600\n"),
		  "FLAT-DISK");
	/* max_price compares the true price. */
	CHECK_STR(rents(s, "gpu_type = H100_80GB\ndisk_size = 600\n"
			   "max_price = 1.2\n"),
		  "FLAT-DISK");
	CHECK_STR(rents(s, "gpu_type = H100_80GB\ndisk_size = 2000\n"
			   "max_price = 1.2\n"),
		  "ENOSPC"); /* 1.05 + 1900 × 0.0001 = 1.24 */
	snap_put(s);
	buf_free(&a);
	buf_free(&b);
}

int main(void)
{
	log_init(100, false);
	test_stock_and_prepaid();
	test_image();
	test_max_price_sent();
	test_price_per_unit();
	log_shutdown();
	return t_done();
}
