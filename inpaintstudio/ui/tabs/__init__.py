"""The studio's tabs: Edit, Clinic and Models, each laid out by its ``build_*_tab``."""
