#include "budget.h"

bool budget_take(struct budget *b, size_t n, size_t limit)
{
	size_t used = atomic_load(&b->used);

	do {
		/* One batch larger than the whole budget still gets in alone. */
		if (used > 0 && (used + n > limit || used + n < used))
			return false;
	} while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
	return true;
}

void budget_give(struct budget *b, size_t n)
{
	atomic_fetch_sub(&b->used, n);
}

size_t budget_used(struct budget *b)
{
	return atomic_load(&b->used);
}
