#include "tests/testutil.h"
static Suite *mk(void){Suite *s=suite_create("range");return s;}
QS_TEST_MAIN(mk)
