zero
one
two
three
four
five
six
seven
