"""snaps"""
