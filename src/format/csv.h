/* The one CSV reader and writer: corpora (senator tweets, BABE news sentences) are streamed,
 * questionnaires parsed whole, pc.csv / prompts.csv written.
 *
 * The reader: RFC 4180 quoting ("" inside a quoted field, delimiters and line breaks allowed
 * inside quotes), LF or CRLF records, a UTF-8 byte-order mark skipped, the delimiter given or
 * detected from the header line (',' ';' or TAB, whichever occurs most outside quotes).
 *
 * It is meant for long, messy inputs: a malformed record is reported with its file and line
 * and the reader carries on at the next line, so the caller can count the bad record and go on. A quote in
 * the middle of an unquoted field is taken literally (as Python's csv module does); a quoted
 * field followed by anything but a delimiter or line end, and a quoted field still open at the
 * end of the file, are errors. */
#ifndef PT_DATA_CSV_H
#define PT_DATA_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/status.h"

typedef struct {
    const char *label;   /* file name for messages */
    const char *text;
    size_t len, pos;
    int line;            /* line number of text[pos] (1-based) */
    char delim;
    char *buf;           /* field bytes of the current record, each NUL-terminated */
    size_t buf_len, buf_cap;
    size_t *offs;        /* (n) field offsets into buf */
    int n, cap;
    char **fields;       /* (n) pointers into buf, valid until the next call */
} pt_csv_reader;

/* delim 0: detect from the first line. The text must outlive the reader. */
pt_status pt_csv_reader_init(pt_csv_reader *r, const char *text, size_t len, char delim, const char *label);
void pt_csv_reader_free(pt_csv_reader *r);

/* Reads the next record (empty lines are skipped). On success *got is false at the end of the
 * text; otherwise fields/n_fields/line describe the record (valid until the next call). On a
 * malformed record returns PT_ERR_FORMAT with "label:line: ..." and leaves the reader at the
 * start of the following line, so reading may continue. */
pt_status pt_csv_reader_next(pt_csv_reader *r, char ***fields, int *n_fields, int *line, bool *got);

/* ---- whole files (small inputs, all or nothing) ----------------------------------------- */

typedef struct {
    int n_fields;
    char **fields; /* n_fields NUL-terminated strings */
    int line;      /* 1-based line on which the record starts */
} pt_csv_record;

typedef struct {
    int n_records;
    pt_csv_record *records;
} pt_csv;

/* Parses comma-separated text (need not be NUL-terminated) with the reader above, stopping
 * at the first malformed record; a NUL byte is an error too. Empty lines are skipped. */
pt_status pt_csv_parse(pt_csv *out, const char *text, size_t len, const char *label);
void pt_csv_free(pt_csv *c);

/* Writes one field, quoted when it contains a comma, quote, CR or LF (or starts/ends with a
 * space, which some readers would trim). */
void pt_csv_write_field(FILE *f, const char *s);

#endif
