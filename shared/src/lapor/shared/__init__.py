"""lapor.shared"""
