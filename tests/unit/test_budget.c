/* test_budget.c — the API's call budget (budget.h) on a short window: the
 * cap on reads (POST and DELETE always go), the Retry-After hold on every
 * call, the pace of refreshes, and the counts `stats` shows. Times are only
 * upper bounds of what the rules promise, never rates. */
#include "budget.h"
#include "t.h"

int main(void)
{
	double until;

	/* The cap: 4 reads in a 1 s window, then none until the oldest
	 * leaves it; a POST or DELETE goes anyway, and is not counted. */
	struct budget *b = budget_new(4, 1.0);
	double t0 = now_monotonic();
	for (int i = 0; i < 4; i++)
		CHECK(budget_take(b, false, &until) == BUDGET_OK);
	CHECK(budget_take(b, false, &until) == BUDGET_SPENT);
	CHECK(until > t0 && until <= now_monotonic() + 1.0);
	CHECK(budget_take(b, true, &until) == BUDGET_OK);
	struct budget_state st;
	budget_state(b, &st);
	CHECK(st.per_hour == 4 && st.counted == 4 && st.always == 1);
	CHECK(budget_free_at(b) > now_monotonic());
	/* A refresh of 1 call does not fit either. */
	CHECK(budget_pace(b, 1, &until) == BUDGET_SPENT);
	sleep_seconds(until - now_monotonic() + 0.05);
	CHECK(budget_take(b, false, &until) == BUDGET_OK);
	budget_free(b);

	/* The hold: every call, reads and POSTs alike, until it ends. */
	b = budget_new(100, 60);
	budget_hold(b, 0.3);
	budget_hold(b, 0.1); /* a shorter one does not shorten it */
	CHECK(budget_take(b, false, &until) == BUDGET_HELD);
	CHECK(budget_take(b, true, &until) == BUDGET_HELD);
	CHECK(until - now_monotonic() > 0.15);
	CHECK(budget_pace(b, 1, &until) == BUDGET_HELD);
	budget_state(b, &st);
	CHECK(st.held_for > 0 && st.counted == 0 && st.always == 0);
	sleep_seconds(until - now_monotonic() + 0.05);
	CHECK(budget_take(b, true, &until) == BUDGET_OK);
	CHECK(budget_take(b, false, &until) == BUDGET_OK);
	budget_free(b);

	/* The pace: with 10 an hour of 40 s, refreshes go at once while
	 * half the budget is left; past it, one call every 40/4/(10 - n) s
	 * after the last: 2 s with 5 spent, 3.3 s with 7. */
	b = budget_new(10, 40);
	CHECK(budget_pace(b, 1, &until) == BUDGET_OK);
	CHECK(budget_pace(b, 1, &until) == BUDGET_OK);
	budget_free(b);
	b = budget_new(10, 40);
	for (int i = 0; i < 5; i++)
		budget_take(b, false, &until);
	CHECK(budget_pace(b, 1, &until) == BUDGET_OK);
	double t1 = now_monotonic();
	CHECK(budget_pace(b, 1, &until) == BUDGET_PACED);
	CHECK(until <= t1 + 2.0 + 1e-6 && until > t1 + 1.5);
	for (int i = 0; i < 2; i++)
		budget_take(b, false, &until);
	CHECK(budget_pace(b, 1, &until) == BUDGET_PACED);
	CHECK(until > t1 + 3.0); /* 40/4/3 after the last */
	CHECK(budget_pace(b, 4, &until) == BUDGET_SPENT);
	budget_free(b);

	/* No budget: everything goes. */
	CHECK(budget_take(NULL, false, &until) == BUDGET_OK);
	CHECK(budget_pace(NULL, 1000, &until) == BUDGET_OK);
	return t_done();
}
