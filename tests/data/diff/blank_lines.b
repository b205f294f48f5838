

a



