/* SPDX-License-Identifier: MIT */
/*
 * Plain text tables for the commands' output (see commands.h): columns as wide as their
 * widest cell, two spaces apart, each left or right aligned; the last column is not padded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

void table_init(struct table *t, const char *const *heads, const char *align)
{
	*t = (struct table){ .heads = heads, .align = align };
	while (heads[t->n_cols])
		t->n_cols++;
	for (size_t i = 0; i < t->n_cols; i++)
		t->width[i] = strlen(heads[i]);
}

/* Adds a row of n_cols cells (NULL shows as "-"). */
void table_add(struct table *t, const char *const *row)
{
	char **cells = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(char *));

	if (!cells)
		cli_oom();
	t->cells = cells;
	for (size_t i = 0; i < t->n_cols; i++) {
		char *c = strdup(row[i] ? row[i] : "-");

		if (!c)
			cli_oom();
		cells[t->n_rows * t->n_cols + i] = c;
		if (strlen(c) > t->width[i])
			t->width[i] = strlen(c);
	}
	t->n_rows++;
}

void table_print_row(const struct table *t, FILE *f, const char *indent, const char *const *cells)
{
	fputs(indent, f);
	for (size_t i = 0; i < t->n_cols; i++) {
		bool last = i + 1 == t->n_cols;
		int w = (int)t->width[i];

		if (t->align[i] == 'r')
			fprintf(f, "%*s", w, cells[i]);
		else
			fprintf(f, "%-*s", last ? 0 : w, cells[i]);
		fputs(last ? "\n" : "  ", f);
	}
}

/* The header, then rows from..to-1. */
void table_print(const struct table *t, FILE *f, const char *indent, size_t from, size_t to)
{
	table_print_row(t, f, indent, t->heads);
	for (size_t r = from; r < to && r < t->n_rows; r++)
		table_print_row(t, f, indent, (const char *const *)t->cells + r * t->n_cols);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->n_rows = 0;
}
