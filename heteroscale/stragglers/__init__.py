"""stragglers"""
