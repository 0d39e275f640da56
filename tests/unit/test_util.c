/* test_util.c — number and time formatting, safe names. */
#include "t.h"
#include "util.h"

static const char *num(double v)
{
	static struct buf b;
	buf_free(&b);
	fmt_number(&b, v);
	return b.data ? b.data : "";
}

static const char *san(const char *s)
{
	static struct buf b;
	buf_free(&b);
	sanitize_into(&b, s);
	return b.data ? b.data : "";
}

int main(void)
{
	CHECK_STR(num(2.49), "2.49");
	CHECK_STR(num(1.6567999999999998), "1.6567999999999998");
	CHECK_STR(num(0.00014), "0.00014");
	CHECK_STR(num(1e-7), "0.0000001");
	CHECK_STR(num(1e21), "1000000000000000000000");
	CHECK_STR(num(-3.5), "-3.5");
	CHECK_STR(num(0), "0");
	CHECK_STR(num(120), "120");
	CHECK_STR(num(1.0 / 0.0), "");

	CHECK(parse_iso8601("2026-05-01T12:00:00.000Z") == 1777636800);
	CHECK(parse_iso8601("2026-05-01T12:00:00Z") == 1777636800);
	CHECK(parse_iso8601("2026-05-01T14:00:00+02:00") == 1777636800);
	CHECK(parse_iso8601("not a date") == -1);
	CHECK(parse_iso8601("") == -1);
	CHECK(parse_iso8601(NULL) == -1);
	CHECK(parse_iso8601("2026-05-01T12:00:00Zjunk") == -1);
	char out[32];
	fmt_iso8601(out, 1777636800);
	CHECK_STR(out, "2026-05-01T12:00:00Z");

	CHECK(safe_name("bench"));
	CHECK(safe_name("a.b_c-1"));
	CHECK(!safe_name(""));
	CHECK(!safe_name("."));
	CHECK(!safe_name(".."));
	CHECK(!safe_name("a/b"));
	CHECK(!safe_name("my pod"));
	CHECK(!safe_name("tab\there"));
	CHECK(!safe_name(NULL));
	CHECK(!safe_name("caf\xc3\xa9"));

	CHECK_STR(san("evil/provider x"), "evil_provider_x");
	CHECK_STR(san("a//b"), "a_b");
	CHECK_STR(san("US-KS-2"), "US-KS-2");
	CHECK_STR(san("\n\x01"), "_");

	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "%d,", i);
	CHECK(b.len == 48890);
	buf_free(&b);
	return t_done();
}
