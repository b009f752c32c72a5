/*
 * Check results as a table for people: what --once, --dry-run and
 * `tocsin-agent check` print.
 */
#ifndef TOCSIN_REPORT_H
#define TOCSIN_REPORT_H

#include <stdio.h>

#include "../checks/check.h"

/*
 * One line per result (check, item, state, summary), its metrics on an
 * indented line below; sizes and durations also in human units.
 */
void report_print(FILE *fp, const struct check_results *results);

#endif
