/* A minimal XML reader for the tests (libxml2 is not a dependency): checks that a document
 * is well-formed (one root, balanced and matching tags, quoted unique attributes, valid
 * entity references, comments) and lists its elements with their attributes, so a test can
 * find the chart's points. */
#ifndef PT_TESTS_TEST_REPORT_XML_H
#define PT_TESTS_TEST_REPORT_XML_H

#include <stddef.h>

typedef struct {
    char name[32];
    int n_attr;
    char attr[16][2][96];
} xml_elem;

typedef struct {
    const char *s;
    size_t i;
    const char *err;
    xml_elem *elems; /* malloc'd, document order; free() it */
    int n_elems, cap;
} xml_doc;

/* NULL when well-formed, else what is wrong. */
const char *xml_check(const char *s, xml_doc *d);
const char *xml_attr(const xml_elem *e, const char *name);
/* The <circle class="point"> with these data-x / data-y values, or NULL. */
const xml_elem *xml_find_point(const xml_doc *d, const char *x, const char *y);
/* Counts elements whose class attribute is `cls`. */
int xml_count_class(const xml_doc *d, const char *cls);
/* Runs xmllint --noout on a file when xmllint is installed (a second opinion). */
void xmllint_ok(const char *path);

#endif
