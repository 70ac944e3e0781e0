"""Disclosure control: cell-key perturbation of published counts."""
