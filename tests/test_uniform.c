#include "tests/testutil.h"
static Suite *mk(void){Suite *s=suite_create("uniform");return s;}
QS_TEST_MAIN(mk)
