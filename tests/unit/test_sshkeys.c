/* test_sshkeys.c — public key lines (the blob compared, never the
 * comment; what is refused and why), the names of ssh_keys/, and the
 * ranking plan/ shows (choose_ranked: choose_offer's pick first). */
#include <stdlib.h>

#include "choose.h"
#include "log.h"
#include "naming.h"
#include "sshkeys.h"
#include "t.h"

#define ED                                                                     \
	"ssh-ed25519 "                                                         \
	"AAAAC3NzaC1lZDI1NTE5AAAAIPMOChbdwiX+b+6JCESTFtGFoyBvn3KN9Jm7tdv8T1Ah"

static void test_blob(void)
{
	unsigned char a[PUBKEY_BLOB_MAX], b[PUBKEY_BLOB_MAX];
	size_t na = pubkey_blob(ED " me@laptop", a, sizeof a);
	size_t nb = pubkey_blob("  " ED "\n", b, sizeof b);
	CHECK(na == 51 && na == nb && !memcmp(a, b, na));
	/* the type in the text must be the blob's */
	CHECK(pubkey_blob("ssh-rsa "
			  "AAAAC3NzaC1lZDI1NTE5AAAAIPMOChbdwiX+b+"
			  "6JCESTFtGFoyBvn3KN9Jm7tdv8T1Ah",
			  a, sizeof a) == 0);
	CHECK(pubkey_blob("ssh-ed25519 not*base64", a, sizeof a) == 0);
	CHECK(pubkey_blob("ssh-ed25519", a, sizeof a) == 0);
	CHECK(pubkey_blob("", a, sizeof a) == 0);
	CHECK(pubkey_blob(ED, a, 10) == 0); /* does not fit */

	CHECK(pubkey_problem(ED "\n", strlen(ED) + 1) == NULL);
	CHECK(pubkey_problem(ED " c", strlen(ED) + 2) == NULL);
	CHECK(strstr(pubkey_problem("", 0), "empty"));
	CHECK(strstr(pubkey_problem("\n", 1), "empty"));
	const char *priv = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n";
	CHECK(strstr(pubkey_problem(priv, strlen(priv)), "private key"));
	const char *two = ED "\n" ED "\n";
	CHECK(strstr(pubkey_problem(two, strlen(two)), "one line"));
	CHECK(strstr(pubkey_problem("hello", 5), "not an OpenSSH"));
}

static void key(struct ssh_key *k, const char *id, const char *name)
{
	memset(k, 0, sizeof *k);
	k->id = xstrdup(id);
	k->name = name ? xstrdup(name) : NULL;
	k->public_key = xstrdup(ED);
}

static void test_names(void)
{
	struct ssh_key k[6];
	key(&k[0], "id0", "laptop");
	key(&k[1], "id1", "twin");
	key(&k[2], "id2", "twin");
	key(&k[3], "id3", "primary"); /* the link's name */
	key(&k[4], "id4", "../etc");
	key(&k[5], ".hidden", "id0"); /* a name that is another's id */
	name_keys(k, 6);
	CHECK_STR(k[0].dir, "laptop");
	CHECK_STR(k[1].dir, "id1");
	CHECK_STR(k[2].dir, "id2");
	CHECK_STR(k[3].dir, "id3");
	CHECK_STR(k[4].dir, "id4");
	CHECK(k[5].dir == NULL); /* neither name nor id usable */
	struct key_list l = {xcalloc(6, sizeof *l.v), 6};
	memcpy(l.v, k, sizeof k);
	key_list_free(&l);
}

static struct snap *offers(void)
{
	static const double price[] = {3, 1, 2, 1, 5, 4, 9};
	struct offer_list l = {xcalloc(7, sizeof(struct offer)), 0};
	for (size_t i = 0; i < 7; i++) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b,
			   "{\"cloudId\":\"X\",\"gpuType\":\"H100_80GB\","
			   "\"socket\":\"PCIe\",\"provider\":\"p%zu\","
			   "\"dataCenter\":\"DC\",\"country\":\"US\","
			   "\"gpuCount\":1,\"stockStatus\":\"%s\","
			   "\"prices\":{\"onDemand\":%g},\"images\":[],"
			   "\"isSpot\":false,\"prepaidTime\":null}",
			   i, i == 6 ? "Unavailable" : "Available", price[i]);
		json_object *o = json_tokener_parse(b.data);
		if (offer_parse(o, false, &l.v[l.n]) == 0)
			l.n++;
		json_object_put(o);
		buf_free(&b);
	}
	return snap_from_offers(&l);
}

static void test_ranked(void)
{
	struct snap *s = offers();
	struct pod_spec spec;
	memset(&spec, 0, sizeof spec);
	spec.gpu_type = xstrdup("H100_80GB");
	spec.max_price = -1;
	const struct offer *v[10], *best;
	size_t n;
	struct buf why;
	buf_init(&why);
	CHECK(choose_offer(s, &spec, &best, &why) == 0);
	CHECK(choose_ranked(s, &spec, v, 10, &n, &why) == 0);
	/* six in stock; cheapest first, ties by name; the pick first */
	CHECK(n == 6 && v[0] == best);
	for (size_t i = 1; i < n; i++)
		CHECK(choose_price(v[i - 1], &spec) <=
		      choose_price(v[i], &spec));
	CHECK(choose_price(v[5], &spec) == 5);
	CHECK(choose_ranked(s, &spec, v, 2, &n, &why) == 0 && n == 2);
	spec.max_price = 0.5;
	CHECK(choose_ranked(s, &spec, v, 10, &n, &why) < 0 && n == 0 &&
	      strstr(why.data, "max_price = 0.5"));
	pod_spec_free(&spec);
	buf_free(&why);
	snap_put(s);
}

int main(void)
{
	log_init(100, false);
	test_blob();
	test_names();
	test_ranked();
	log_shutdown();
	return t_done();
}
