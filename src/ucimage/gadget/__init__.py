"""gadget"""
