/* CSV reading and writing for evaluation files (questionnaires in, pc.csv / prompts.csv out).
 *
 * The reader follows RFC 4180 as spreadsheet programs write it: fields separated by commas,
 * records by LF or CRLF, fields optionally in double quotes with "" standing for a quote and
 * with commas and line breaks allowed inside; a UTF-8 byte-order mark at the start is
 * skipped. Errors name the file (label) and the line. The writer quotes a field only when it
 * has to. */
#ifndef PT_EVAL_CSV_H
#define PT_EVAL_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "util/status.h"

typedef struct {
    int n_fields;
    char **fields; /* n_fields NUL-terminated strings */
    int line;      /* 1-based line on which the record starts */
} pt_csv_record;

typedef struct {
    int n_records;
    pt_csv_record *records;
} pt_csv;

/* Parses CSV text (need not be NUL-terminated). Empty lines are skipped. */
pt_status pt_csv_parse(pt_csv *out, const char *text, size_t len, const char *label);
void pt_csv_free(pt_csv *c);

/* Writes one field, quoted when it contains a comma, quote, CR or LF (or starts/ends with a
 * space, which some readers would trim). */
void pt_csv_write_field(FILE *f, const char *s);

#endif
