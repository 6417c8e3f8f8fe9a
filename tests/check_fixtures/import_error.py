import no_such_module_for_npoptim_check

class SGD:
    pass
